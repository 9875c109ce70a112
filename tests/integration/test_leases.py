"""Leases on a real server: a worker renews what it is still delivering, so a slow batch is neither reaped
nor delivered twice; a worker that dies still has its batch reaped promptly, with the reason recorded."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Sequence

import redis.asyncio as aioredis

from tests.conftest import ManualClock
from tests.helpers import Recorder
from tests.integration.hookserver import HookServer
from zsched import AsyncScheduler, Core, Keyspace, Scheduler
from zsched.delivery.callables import CallableDelivery
from zsched.delivery.channel import Outcome
from zsched.delivery.webhook import WebhookChannel
from zsched.delivery.worker import Worker
from zsched.models import Notification


def _async(redis_url: str, core: Core) -> AsyncScheduler:
    return AsyncScheduler(aioredis.Redis.from_url(redis_url), core=core)


async def _until(predicate: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_batch_slower_than_its_lease_is_delivered_once(redis_url: str, keyspace: Keyspace) -> None:
    # The measured case: 40 webhooks answering after 1.2 s each, 16 at a time, take about 3.6 s under a 2 s
    # lease. Without renewal the idle worker reaped the batch and POSTed all 40 a second time.
    core = Core(keyspace)
    producer = _async(redis_url, core)
    with HookServer(hang_s=1.2) as hook:
        hook.httpd.socket.listen(64)  # http.server's backlog of 5 resets some of 32 concurrent connects
        channels = [WebhookChannel(hook.url, "secret", concurrency=16) for _ in range(2)]
        schedulers = [_async(redis_url, core) for _ in range(2)]
        workers = [Worker(s, c, lease_ms=2000) for s, c in zip(schedulers, channels, strict=True)]
        tasks = [asyncio.create_task(w.run()) for w in workers]
        await asyncio.sleep(0.3)  # both idle: whichever claims first gets the whole batch
        await producer.schedule([f"user{i}" for i in range(40)], "Slow", "hook", delay=0)

        async def all_sent() -> bool:
            return (await producer.stats()).counts["sent"] == 40

        await _until(all_sent, 30)
        for w in workers:
            w.should_exit = True  # each finishes the batch it holds: any duplicate POST lands before this returns
        await asyncio.gather(*tasks)
        for c in channels:
            await c.aclose()
    posts = Counter(headers["x-zsched-id"] for headers, _ in hook.requests)
    stats = await producer.stats()
    assert (len(posts), sum(posts.values()) - len(posts)) == (40, 0), "40 delivered, 0 duplicate POSTs"
    assert stats.totals.get("reaped", 0) == 0
    assert stats.counts["sent"] == 40
    for s in [producer, *schedulers]:
        await s.close()


def test_renew_extends_only_the_leases_its_claim_still_holds(pinned: Scheduler, clock: ManualClock) -> None:
    ids = pinned.schedule(["ann", "bob", "cy"], "Renew", "me", delay=0).notification_ids
    p = pinned.core.keys.partitions[0]
    mine = pinned.run(pinned.core.claim(p, 10, 2000)).notifications
    clock.advance(1500)
    assert pinned.run(pinned.core.renew(p, mine, 2000)) == []
    clock.advance(1500)  # past the first deadline, inside the renewed one
    assert pinned.run(pinned.core.reap(p)) == (0, 0)
    assert pinned.redis.zscore(p.processing, ids[0]) == clock.ms + 500  # the renewed deadline
    clock.advance(500)
    assert pinned.run(pinned.core.reap(p, lease_ms=2000)) == (3, 0)  # no word for a whole lease: reaped
    again = pinned.run(pinned.core.claim(p, 1, 2000)).notifications  # another worker takes the first
    assert [n.id for n in again] == ids[:1]
    assert sorted(pinned.run(pinned.core.renew(p, mine, 2000))) == ids, "none is the first claim's any more"
    assert pinned.run(pinned.core.renew(p, again, 2000)) == []
    assert pinned.redis.zscore(p.processing, ids[1]) is None, "a lost lease is not renewed"
    n = pinned.status(ids[1])
    assert n.scheduled_status == "pending"
    assert n.last_error == "lease expired after 2.0 s on attempt 1: the worker stopped or stalled"


class Hangs:
    """A delivery that never finishes: its worker holds the batch until it dies."""

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]:
        await asyncio.Event().wait()
        return []


async def test_a_dead_workers_batch_is_reaped_promptly_with_the_reason(redis_url: str, keyspace: Keyspace) -> None:
    core = Core(keyspace)
    producer = _async(redis_url, core)
    dying = Worker(_async(redis_url, core), Hangs(), lease_ms=2000)
    task = asyncio.create_task(dying.run())
    ids = (await producer.schedule(["dee", "eve"], "Orphan", "batch", delay=0)).notification_ids

    async def held() -> bool:
        return (await producer.stats()).counts["processing"] == 2

    await _until(held, 5)
    recorder = Recorder()
    rescuer = Worker(_async(redis_url, core), recorder, lease_ms=2000)
    rescuing = asyncio.create_task(rescuer.run())
    await asyncio.sleep(3)  # longer than the lease: a live worker keeps its batch by renewing
    assert (await producer.stats()).counts["processing"] == 2 and recorder.delivered == []
    task.cancel()  # the worker dies: no ack, no more renewals
    killed_at = time.monotonic()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    async def sent() -> bool:
        return (await producer.stats()).counts["sent"] == 2

    await _until(sent, 15)
    recovered_s = time.monotonic() - killed_at
    rescuer.should_exit = True
    await rescuing
    assert sorted(n.id for n in recorder.delivered) == ids
    assert recovered_s < 2.0 + 1.0 + 2.0, f"{recovered_s:.1f} s: a lease, a reap interval, and slack"
    for nid in ids:
        n = await producer.status(nid)
        assert n.attempts == 2
        assert n.last_error == "lease expired after 2.0 s on attempt 1: the worker stopped or stalled"
    assert (await producer.stats()).totals["reaped"] == 2
    for s in [producer, dying.scheduler, rescuer.scheduler]:
        await s.close()


async def test_a_sync_callable_slower_than_the_lease_keeps_it(redis_url: str, keyspace: Keyspace) -> None:
    # A sync function used to run on the event loop: while it slept, no renewal could be sent, so the other
    # worker reaped the batch and called the function again for each notification.
    core = Core(keyspace)
    producer = _async(redis_url, core)
    calls: list[int] = []

    def slow(n: Notification) -> None:
        time.sleep(1.5)
        calls.append(n.id)

    schedulers = [_async(redis_url, core) for _ in range(2)]
    workers = [Worker(s, CallableDelivery(slow), lease_ms=600) for s in schedulers]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    await asyncio.sleep(0.3)
    ids = (await producer.schedule(["fay", "gus", "hal"], "Slow", "callable", delay=0)).notification_ids

    async def all_sent() -> bool:
        return (await producer.stats()).counts["sent"] == 3

    await _until(all_sent, 20)
    for w in workers:
        w.should_exit = True
    await asyncio.gather(*tasks)
    assert sorted(calls) == ids, "each called once"
    assert (await producer.stats()).totals.get("reaped", 0) == 0
    for s in [producer, *schedulers]:
        await s.close()


async def test_a_slow_failing_webhook_burns_one_attempt_per_delivery(redis_url: str, keyspace: Keyspace) -> None:
    # Each lease cycle used to burn an attempt (reaped, claimed again): everything ended failed within
    # minutes and the backoff never applied. Now each failure is one attempt, retried after its backoff.
    core = Core(keyspace)
    producer = _async(redis_url, core)
    with HookServer(statuses=[500], hang_s=1.2) as hook:
        hook.httpd.socket.listen(64)
        channels = [WebhookChannel(hook.url, "secret", concurrency=16) for _ in range(2)]
        schedulers = [_async(redis_url, core) for _ in range(2)]
        workers = [Worker(s, c, lease_ms=2000) for s, c in zip(schedulers, channels, strict=True)]
        tasks = [asyncio.create_task(w.run()) for w in workers]
        await asyncio.sleep(0.3)
        ids = (await producer.schedule([f"user{i}" for i in range(40)], "Slow", "fails", delay=0)).notification_ids

        async def all_retried() -> bool:
            return (await producer.stats()).totals.get("retried", 0) >= 40

        await _until(all_retried, 30)
        for w in workers:
            w.should_exit = True
        await asyncio.gather(*tasks)
        for c in channels:
            await c.aclose()
    stats = await producer.stats()
    assert (stats.totals.get("retried"), stats.totals.get("reaped", 0), len(hook.requests)) == (40, 0, 40)
    for nid in ids[:3]:
        n = await producer.status(nid)
        assert (n.scheduled_status, n.attempts) == ("pending", 1)
        assert (n.scheduled_at - n.created_at).total_seconds() > 290, "retried after the 5 minute backoff"
    for s in [producer, *schedulers]:
        await s.close()
