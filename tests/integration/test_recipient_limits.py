"""Per-recipient limits on a real server: at most N of a type per window to one recipient, the rest pending and
due again at the window's end, in the claim's own inbox path too; other types and recipients unaffected."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from tests.conftest import ManualClock
from zsched import AsyncScheduler, Core, Keyspace, Scheduler
from zsched.delivery.worker import Worker
from zsched.engine.leases import InboxPlan
from zsched.engine.shaping import RecipientLimit
from zsched.errors import ConfigError

PROMO = RecipientLimit("promo", most=2, window_ms=60_000)


def _claim(zs: Scheduler, inbox: bool = False) -> list[int]:
    p = zs.core.keys.partitions[0]
    plan = InboxPlan(maxlen=100, keep_ms=3_600_000) if inbox else None
    got = zs.run(zs.core.claim(p, 100, 30_000, plan, limits=[PROMO]))
    return sorted([n.id for n in got.notifications] + [i for i, _, _ in got.sent])


def _window_end(ms: int) -> int:
    return (ms // 60_000 + 1) * 60_000


@pytest.mark.parametrize("inbox", [False, True], ids=["claimed", "in-claim inbox"])
def test_beyond_the_limit_waits_for_the_window_end(pinned: Scheduler, clock: ManualClock, inbox: bool) -> None:
    ana = [pinned.schedule(["ana"], "p", "m", delay=0, type="promo").notification_ids[0] for _ in range(5)]
    bob = [pinned.schedule(["bob"], "p", "m", delay=0, type="promo").notification_ids[0] for _ in range(2)]
    alerts = [pinned.schedule(["ana"], "a", "m", delay=0, type="alert").notification_ids[0] for _ in range(3)]
    assert _claim(pinned, inbox) == sorted(ana[:2] + bob + alerts), "other types and recipients flow"
    end = _window_end(clock.ms)
    p = pinned.core.keys.partitions[0]
    assert {int(i): s for i, s in pinned.redis.zrange(p.due, 0, -1, withscores=True)} == dict.fromkeys(ana[2:], end)
    assert [pinned.status(i).scheduled_status for i in ana[2:]] == ["pending"] * 3
    assert pinned.status(ana[2]).attempts == 0, "a deferral is no attempt"
    assert pinned.stats().totals["deferred"] == 3
    clock.ms = end - 1
    assert _claim(pinned, inbox) == []
    clock.ms = end
    assert _claim(pinned, inbox) == ana[2:4], "the next window allows two more"
    clock.ms = _window_end(end)
    assert _claim(pinned, inbox) == ana[4:]


def test_a_calls_recipients_over_the_limit_get_records_of_their_own(pinned: Scheduler, clock: ManualClock) -> None:
    calls = [pinned.schedule(["ana", "bob"], "p", "m", delay=0, type="promo") for _ in range(3)]
    ids = [c.notification_ids for c in calls]  # [[ana, bob], ...]
    assert _claim(pinned) == sorted(ids[0] + ids[1])
    late_ana, late_bob = ids[2]
    assert pinned.status(late_ana).scheduled_status == "pending"
    pinned.cancel(late_bob)  # a deferred one is an ordinary pending notification
    assert pinned.stats().counts["pending"] == 1
    clock.ms = _window_end(clock.ms)
    assert _claim(pinned) == [late_ana]
    assert pinned.status(late_bob).scheduled_status == "cancelled"


def test_limits_are_checked() -> None:
    with pytest.raises(ConfigError, match="at least 1 per window"):
        RecipientLimit("promo", most=0, window_ms=60_000)
    with pytest.raises(ConfigError, match="at least 1 s"):
        RecipientLimit("promo", most=1, window_ms=10)
    with pytest.raises(ConfigError, match="one recipient limit per type"):
        Worker(None, None, recipient_limits=[PROMO, PROMO])  # type: ignore[arg-type]


async def test_a_running_worker_delivers_at_most_the_limit(redis_url: str, keyspace: Keyspace) -> None:
    core = Core(keyspace)
    zs = AsyncScheduler(aioredis.Redis.from_url(redis_url), core=core)
    worker = Worker(AsyncScheduler(aioredis.Redis.from_url(redis_url), core=core), idle_s=0.1, recipient_limits=[PROMO])
    task = asyncio.create_task(worker.run())
    ids = (await zs.schedule(["una"], "p", "m", delay=0, type="promo")).notification_ids
    for _ in range(5):
        ids += (await zs.schedule(["una"], "p", "m", delay=0, type="promo")).notification_ids
    deadline = time.monotonic() + 10
    while (await zs.stats()).counts["sent"] < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    stats = await zs.stats()
    worker.should_exit = True
    await task
    # Unless the window turned meanwhile (once a minute), two went and four wait.
    assert stats.counts["sent"] in (2, 4) and stats.counts["pending"] == 6 - stats.counts["sent"]
    await worker.scheduler.close()
    await zs.close()


def test_the_setting_reads_each_types_limit() -> None:
    from zsched.settings import Settings, SettingsError

    s = Settings.from_env({}, recipient_limits="promo=3/1h, digest=1/1d")
    assert s.worker.limits() == (RecipientLimit("promo", 3, 3_600_000), RecipientLimit("digest", 1, 86_400_000))
    for bad in ("promo=3", "promo=x/1h", "=3/1h", "promo=0/1h", "promo=1/1h,promo=2/1h"):
        with pytest.raises(SettingsError, match="ZSCHED_RECIPIENT_LIMITS|one recipient limit per type"):
            Settings.from_env({}, recipient_limits=bad).worker.limits()


@pytest.mark.parametrize("inbox", [False, True], ids=["claimed", "in-claim inbox"])
def test_a_limit_that_drops_ends_the_rest_throttled(pinned: Scheduler, clock: ManualClock, inbox: bool) -> None:
    drop = RecipientLimit("promo", most=1, window_ms=60_000, over="drop")
    p = pinned.core.keys.partitions[0]
    plan = InboxPlan(maxlen=100, keep_ms=3_600_000) if inbox else None
    singles = [pinned.schedule(["ana"], "p", "m", delay=0, type="promo").notification_ids[0] for _ in range(2)]
    call = pinned.schedule(["ana", "bob"], "p", "m", delay=0, type="promo", created_by="crm").notification_ids
    got = pinned.run(pinned.core.claim(p, 100, 30_000, plan, limits=[drop]))
    handed = {n.id for n in got.notifications} | {i for i, _, _ in got.sent}
    ana = {*singles, call[0]}
    assert call[1] in handed and len(handed & ana) == 1, "one each per window"
    for nid in ana - handed:
        n = pinned.status(nid)
        assert n.scheduled_status == "throttled" and n.throttled_at is not None and n.attempts == 0
    stats = pinned.stats()
    assert stats.counts["throttled"] == 2 and stats.counts["pending"] == 0 and stats.totals["throttled"] == 2
    held = len({n.id for n in got.notifications} & set(call))  # claimed under the lease: still the creator's
    assert int(pinned.redis.hget(p.pending_by_creator, "crm") or 0) == held, "a throttled (or sent) one is not held"
    clock.advance(pinned.core.retention.cancelled_ms + 1)
    assert pinned.run(pinned.core.purge(p)) >= 2, "kept as long as an expired one, then purged"
    with pytest.raises(ConfigError, match="defer or drop"):
        RecipientLimit("promo", 1, 60_000, over="later")  # type: ignore[arg-type]


def test_the_setting_reads_drop() -> None:
    from zsched.settings import Settings

    s = Settings.from_env({}, recipient_limits="promo=3/1h:drop,digest=1/1d:defer")
    assert s.worker.limits() == (
        RecipientLimit("promo", 3, 3_600_000, "drop"),
        RecipientLimit("digest", 1, 86_400_000, "defer"),
    )
