"""Pause and resume on a real server with running workers: nothing of a paused scope is delivered (the claim's
own inbox path included), what piled up drains in due order with priorities first, and a paused type leaves
the others flowing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from tests.helpers import Recorder
from zsched import AsyncScheduler, Core, Keyspace
from zsched.delivery.worker import Worker
from zsched.errors import FieldError


def _async(redis_url: str, core: Core) -> AsyncScheduler:
    return AsyncScheduler(aioredis.Redis.from_url(redis_url), core=core)


async def _until(predicate: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


class Running:
    """Workers running in this event loop until ``stop``."""

    def __init__(self, redis_url: str, core: Core, count: int = 1, recorder: Recorder | None = None) -> None:
        self.schedulers = [_async(redis_url, core) for _ in range(count)]
        self.workers = [Worker(s, recorder, batch=10, idle_s=0.2) for s in self.schedulers]
        self.tasks = [asyncio.create_task(w.run()) for w in self.workers]

    async def stop(self) -> None:
        for w in self.workers:
            w.should_exit = True
        await asyncio.gather(*self.tasks)
        for s in self.schedulers:
            await s.close()


PRIORITIES = ("low", "normal", "high", "urgent")


async def test_nothing_is_delivered_while_paused_then_due_order_and_priorities_hold(
    redis_url: str, keyspace: Keyspace
) -> None:
    core = Core(keyspace)
    zs = _async(redis_url, core)
    paused = await zs.pause()
    assert paused.all and paused.types == [] and "*" in paused.since
    recorder = Recorder()
    running = Running(redis_url, core, count=2, recorder=recorder)
    made: list[tuple[str, int, int]] = []  # (priority, order scheduled in its priority, id)
    for i in range(12):
        for priority in PRIORITIES:
            (nid,) = (await zs.schedule([f"r{i}"], "t", "m", delay=0.01 * i, priority=priority)).notification_ids
            made.append((priority, i, nid))
    call = await zs.schedule([f"c{i}" for i in range(30)], "call", "m", delay=0.2, priority="high")
    await asyncio.sleep(0.8)  # everything is due now, and the workers claimed again and again
    assert recorder.delivered == [], "nothing is delivered while everything is paused"
    stats = await zs.stats()
    assert stats.counts["pending"] == 48 + 30 and stats.paused.all
    await running.stop()

    # One worker now, so the order of delivery is the order of the claims.
    running = Running(redis_url, core, count=1, recorder=recorder)
    assert not (await zs.resume()).all

    async def all_sent() -> bool:
        return (await zs.stats()).counts["sent"] == 78

    await _until(all_sent, 30)
    await running.stop()
    order = [n.id for n in recorder.delivered]
    assert len(order) == len(set(order)) == 78
    calls = set(call.notification_ids)
    expected = [nid for p in reversed(PRIORITIES) for _, _, nid in sorted(m for m in made if m[0] == p)]
    # The call is high and due after every single high one: it drains right after them.
    at = [i for i, nid in enumerate(order) if nid in calls]
    singles = [nid for nid in order if nid not in calls]
    assert singles == expected, "every urgent before any high, ..., and within a priority the earliest first"
    assert at == list(range(24, 54)), "the high call after the high singles, before any normal one"
    await zs.close()


async def test_the_claims_own_inbox_path_honours_a_pause(redis_url: str, keyspace: Keyspace) -> None:
    core = Core(keyspace)
    zs = _async(redis_url, core)
    await zs.pause("digest")
    running = Running(redis_url, core)  # the default delivery: the inbox, which the claim script delivers itself
    digest = (await zs.schedule(["ines", "ivo"], "digest", "m", delay=0, type="digest")).notification_ids
    (alert,) = (await zs.schedule(["ines"], "alert", "m", delay=0, type="alert")).notification_ids

    async def alert_sent() -> bool:
        return (await zs.status(alert)).is_sent

    await _until(alert_sent, 10)
    await asyncio.sleep(0.3)
    assert [(await zs.status(i)).scheduled_status for i in digest] == ["pending", "pending"]
    stats = await zs.stats()
    assert stats.paused.types == ["digest"] and stats.paused.parked == 1, "the call waits aside as one entry"
    assert stats.counts["pending"] == 2
    still = await zs.resume("digest")
    assert still.types == [] and still.parked == 0

    async def digest_sent() -> bool:
        return all([(await zs.status(i)).is_sent for i in digest])

    await _until(digest_sent, 10)
    await running.stop()
    await zs.close()


async def test_a_paused_type_leaves_others_flowing_and_changes_while_parked_hold(
    redis_url: str, keyspace: Keyspace
) -> None:
    core = Core(keyspace)
    zs = _async(redis_url, core)
    await zs.pause("promo")
    recorder = Recorder()
    running = Running(redis_url, core, recorder=recorder)
    promos = [(await zs.schedule([f"p{i}"], "promo", "m", delay=0, type="promo")).notification_ids[0] for i in range(5)]
    alerts = [(await zs.schedule([f"a{i}"], "alert", "m", delay=0, type="alert")).notification_ids[0] for i in range(5)]

    async def alerts_sent() -> bool:
        return len(recorder.delivered) >= 5

    await _until(alerts_sent, 10)
    await asyncio.sleep(0.3)
    assert sorted(n.id for n in recorder.delivered) == alerts, "other types flow while promo is paused"
    assert (await zs.pauses()).parked == 5
    await zs.cancel(promos[0])  # cancelled while parked: it must not come back on resume
    await zs.reschedule(promos[1], delay=3600)  # rescheduled while parked: its new time holds
    # A parked entry counts as pending until resume drops (cancelled) or re-files (rescheduled) it.
    assert (await zs.stats()).counts["pending"] == 5 + 1
    await zs.resume("promo")

    async def promos_sent() -> bool:
        return len(recorder.delivered) >= 8

    await _until(promos_sent, 10)
    await asyncio.sleep(0.3)
    await running.stop()
    assert sorted(n.id for n in recorder.delivered) == sorted(alerts + promos[2:])
    assert (await zs.status(promos[0])).scheduled_status == "cancelled"
    assert (await zs.status(promos[1])).scheduled_status == "pending"
    stats = await zs.stats()
    assert stats.counts["pending"] == 1 and stats.paused.parked == 0
    await zs.close()


async def test_pause_and_resume_are_idempotent_and_checked(redis_url: str, keyspace: Keyspace) -> None:
    core = Core(Keyspace(keyspace.prefix, partitions=3))
    zs = _async(redis_url, core)
    first = await zs.pause("promo")
    again = await zs.pause("promo")
    assert first.since == again.since and first.types == ["promo"], "a second pause keeps the first's time"
    with pytest.raises(FieldError, match="give no type"):
        await zs.pause("*")
    with pytest.raises(FieldError, match="type"):
        await zs.resume("")
    await zs.pause()
    both = await zs.pauses()
    assert both.all and both.types == ["promo"]
    assert (await zs.resume("promo")).all, "resuming a type leaves the pause of everything"
    none = await zs.resume()
    assert not none.all and none.types == [] and none.since == {}
    assert (await zs.resume()).since == {}, "resuming again changes nothing"
    await zs.close()
