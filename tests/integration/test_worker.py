"""The worker on a real server: concurrency, leases, precision, wakeups and graceful shutdown."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import redis.asyncio as aioredis

from tests.conftest import ManualClock
from tests.helpers import Recorder, tick
from zsched import AsyncScheduler, Core, Keyspace, RetryPolicy, Scheduler
from zsched.delivery.worker import Worker


def _async(redis_url: str, core: Core) -> AsyncScheduler:
    return AsyncScheduler(aioredis.Redis.from_url(redis_url), core=core)


async def _until(predicate: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_four_workers_deliver_ten_thousand_exactly_once(redis_url: str, keyspace: Keyspace) -> None:
    core = Core(keyspace)
    producer = _async(redis_url, core)
    ids: list[int] = []
    for chunk in range(10):
        people = [f"user{chunk * 1000 + i}" for i in range(1000)]
        ids += (await producer.schedule(people, "Bulk", "hello", delay=0)).notification_ids
    recorders = [Recorder() for _ in range(4)]
    schedulers = [_async(redis_url, core) for _ in range(4)]
    workers = [Worker(s, r, batch=100) for s, r in zip(schedulers, recorders, strict=True)]
    tasks = [asyncio.create_task(w.run()) for w in workers]

    async def all_sent() -> bool:
        return (await producer.stats()).counts["sent"] == 10_000

    await _until(all_sent, 120)
    for w in workers:
        w.should_exit = True
    await asyncio.gather(*tasks)
    delivered = Counter(n.id for r in recorders for n in r.delivered)
    assert sorted(delivered) == sorted(ids) and set(delivered.values()) == {1}
    assert sum(1 for r in recorders if r.delivered) >= 2, "the work was shared"
    stats = await producer.stats()
    assert stats.counts == {
        "pending": 0,
        "processing": 0,
        "sent": 10_000,
        "cancelled": 0,
        "failed": 0,
        "expired": 0,
        "collapsed": 0,
        "throttled": 0,
        "skipped": 0,
    }
    for s in [producer, *schedulers]:
        await s.close()


def test_expired_lease_is_redelivered_by_another_worker(pinned: Scheduler, clock: ManualClock) -> None:
    (nid,) = pinned.schedule(["kim"], "Lease", "test", delay=0).notification_ids
    p = pinned.core.keys.partitions[0]
    claimed = pinned.run(pinned.core.claim(p, 10, 30_000))  # a worker claims, then dies before acking
    assert [n.id for n in claimed.notifications] == [nid]
    assert pinned.status(nid).scheduled_status == "processing"
    clock.advance(29_999)
    assert pinned.run(pinned.core.reap(p)) == (0, 0)
    clock.advance(1)
    assert pinned.run(pinned.core.reap(p)) == (1, 0)
    n = pinned.status(nid)
    assert n.scheduled_status == "pending" and "lease expired" in (n.last_error or "")
    second = Recorder()
    tick(pinned, second)
    assert [d.id for d in second.delivered] == [nid]
    assert (pinned.status(nid).scheduled_status, pinned.status(nid).attempts) == ("sent", 2)


def test_late_ack_from_the_dead_worker_prevents_a_second_delivery(pinned: Scheduler, clock: ManualClock) -> None:
    (nid,) = pinned.schedule(["lee"], "Slow", "worker", delay=0).notification_ids
    p = pinned.core.keys.partitions[0]
    pinned.run(pinned.core.claim(p, 10, 1000))
    clock.advance(1000)
    pinned.run(pinned.core.reap(p))  # lease expired: back in due
    assert pinned.run(pinned.core.ack(p, [nid]))[1] == 1  # the slow worker did deliver it after all
    later = Recorder()
    tick(pinned, later)
    assert later.delivered == [] and pinned.status(nid).scheduled_status == "sent"


def test_a_lease_that_keeps_expiring_ends_in_failed(pinned: Scheduler, clock: ManualClock) -> None:
    (nid,) = pinned.schedule(["poison"], "Kills", "workers", delay=0).notification_ids
    p = pinned.core.keys.partitions[0]
    for _ in range(pinned.core.retry.max_attempts):
        assert pinned.run(pinned.core.claim(p, 10, 100)).notifications
        clock.advance(100)
        pinned.run(pinned.core.reap(p))
    n = pinned.status(nid)
    assert n.scheduled_status == "failed" and n.attempts == pinned.core.retry.max_attempts


async def test_due_in_300ms_is_delivered_close_to_its_time(redis_url: str, keyspace: Keyspace) -> None:
    core = Core(keyspace)
    late: list[float] = []
    scheduler = _async(redis_url, core)
    worker = Worker(scheduler, Recorder(), idle_s=30, observer=lambda kind, n, late_ms: late.append(late_ms))
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.2)  # the worker is idle, sleeping up to idle_s: only the wakeup can rouse it
    producer = _async(redis_url, core)
    (nid,) = (await producer.schedule(["mia"], "Soon", "300 ms", delay=0.3)).notification_ids

    async def sent() -> bool:
        return (await producer.status(nid)).is_sent

    await _until(sent, 5)
    n = await producer.status(nid)
    assert n.sent_at is not None
    lateness_ms = (n.sent_at - n.scheduled_at).total_seconds() * 1000
    assert 0 <= lateness_ms < 250, f"{lateness_ms:.1f} ms late on an idle machine"  # generous: bench measures
    assert late and late[0] < 250
    worker.should_exit = True
    await task
    await scheduler.close()
    await producer.close()


async def test_retry_backoff_runs_in_real_time(redis_url: str, keyspace: Keyspace) -> None:
    core = Core(keyspace, retry=RetryPolicy(delays_ms=(30, 60)))
    producer = _async(redis_url, core)
    (nid,) = (await producer.schedule(["ned"], "Flaky", "twice", delay=0)).notification_ids
    attempts: list[int] = []

    async def flaky(n: object) -> None:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise TimeoutError("gateway timed out")

    from zsched.delivery import CallableDelivery

    worker = Worker(_async(redis_url, core), CallableDelivery(flaky), idle_s=1)
    task = asyncio.create_task(worker.run())

    async def sent() -> bool:
        return (await producer.status(nid)).is_sent

    await _until(sent, 10)
    worker.should_exit = True
    await task
    n = await producer.status(nid)
    assert (n.attempts, attempts) == (3, [1, 2, 3])
    assert n.last_error == "TimeoutError: gateway timed out"
    await worker.scheduler.close()
    await producer.close()


async def test_a_refusing_server_is_waited_out_not_fatal(valkey: object, prefix: str) -> None:
    import redis as sync_redis

    url = valkey.url  # type: ignore[attr-defined]
    core = Core(Keyspace(prefix))
    producer = _async(url, core)
    (nid,) = (await producer.schedule(["oom"], "Later", "after the refusal", delay=0)).notification_ids
    admin = sync_redis.Redis.from_url(url)
    admin.config_set("maxmemory", "1")  # every write is refused with OOM while this holds
    # A claim can still go through (its first write, ZREM, frees memory); the delivery's XADD is refused, so
    # the notification waits out its lease and is delivered once the server accepts writes again.
    worker = Worker(_async(url, core), Recorder(), idle_s=0.05, lease_ms=300)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.4)
    assert not task.done() and worker.delivered == 0
    admin.config_set("maxmemory", "0")

    async def sent() -> bool:
        return (await producer.status(nid)).is_sent

    await _until(sent, 10)
    worker.should_exit = True
    await task
    admin.close()
    await worker.scheduler.close()
    await producer.close()


def test_a_jittered_retry_logs_the_delay_it_applies(
    redis_url: str, keyspace: Keyspace, clock: ManualClock, caplog: object
) -> None:
    import logging

    import redis as sync_redis

    zs = Scheduler(
        sync_redis.Redis.from_url(redis_url),
        core=Core(keyspace, retry=RetryPolicy(delays_ms=(100_000,), jitter=0.5), clock=clock),
    )
    (nid,) = zs.schedule(["jit"], "Jitter", "once", delay=0).notification_ids
    with caplog.at_level(logging.WARNING, logger="zsched.worker"):  # type: ignore[attr-defined]
        tick(zs, Recorder(fail={nid}))
    applied_ms = (zs.status(nid).scheduled_at.timestamp() * 1000) - clock.ms
    assert 50_000 <= applied_ms <= 150_000
    logged = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]  # type: ignore[attr-defined]
    assert logged and f"retrying in {applied_ms / 1000:.1f} s" in logged[0], (logged, applied_ms)
    zs.close()
