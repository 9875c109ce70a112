"""Priority on a real server: among what is due when a claim runs, urgent goes before high, before normal,
before low, and within one priority the earliest due goes first; every move keeps a notification in its
priority's due set."""

from __future__ import annotations

import json

from tests.conftest import ManualClock
from tests.helpers import Recorder, tick
from zsched import Scheduler
from zsched.models import ms_to_datetime


def _claim_all(zs: Scheduler, batch: int) -> list[list[int]]:
    p = zs.core.keys.partitions[0]
    batches = []
    while claimed := zs.run(zs.core.claim(p, batch, 30_000)).notifications:
        batches.append([n.id for n in claimed])
    return batches


def test_high_goes_before_low_due_at_the_same_instant(pinned: Scheduler, clock: ManualClock) -> None:
    at = ms_to_datetime(clock.ms + 1000)
    low = [pinned.schedule(["una"], "low", "m", at=at, priority="low").notification_ids[0] for _ in range(300)]
    high = [pinned.schedule(["una"], "high", "m", at=at, priority="high").notification_ids[0] for _ in range(300)]
    clock.advance(1000)
    batches = _claim_all(pinned, 100)
    assert [len(b) for b in batches] == [100] * 6
    assert sorted(i for b in batches[:3] for i in b) == high, "every high one arrives before any low one"
    assert sorted(i for b in batches[3:] for i in b) == low


def test_priorities_in_order_and_earliest_first_within_one(pinned: Scheduler, clock: ManualClock) -> None:
    start = clock.ms
    made: dict[tuple[str, int], int] = {}
    for offset in (300, 100, 200):  # scheduled out of due order
        for priority in ("low", "normal", "urgent", "high"):
            at = ms_to_datetime(start + offset)
            made[priority, offset] = pinned.schedule(["ola"], "t", "m", at=at, priority=priority).notification_ids[0]
    later = pinned.schedule(["ola"], "t", "m", at=ms_to_datetime(start + 5000), priority="urgent").notification_ids
    clock.advance(300)
    (claimed,) = _claim_all(pinned, 100)
    order = [(p, o) for p in ("urgent", "high", "normal", "low") for o in (100, 200, 300)]
    assert claimed == [made[key] for key in order]
    wait = pinned.run(pinned.core.claim(pinned.core.keys.partitions[0], 10, 30_000)).wait_ms
    assert wait == 4700, "the wait is to the earliest head over every priority's set"
    assert pinned.status(later[0]).scheduled_status == "pending"


def test_every_move_keeps_a_notification_in_its_priority_set(pinned: Scheduler, clock: ManualClock) -> None:
    p = pinned.core.keys.partitions[0]
    r = pinned.redis
    (nid,) = pinned.schedule(["ivo"], "t", "m", delay=60, priority="urgent").notification_ids
    other = pinned.schedule(["ivo"], "t", "m", delay=60, priority="low").notification_ids[0]
    assert r.zscore(p.due_for("urgent"), nid) is not None and r.zcard(p.due) == 0
    assert json.loads(r.hget(p.state, nid))["priority"] == "urgent"
    stats = pinned.stats()
    assert stats.counts["pending"] == 2 and stats.next_due_at == ms_to_datetime(clock.ms + 60_000)

    pinned.reschedule(nid, delay=30)
    assert r.zscore(p.due_for("urgent"), nid) == clock.ms + 30_000
    pinned.cancel(other)
    assert r.zcard(p.due_for("low")) == 0 and pinned.stats().counts["pending"] == 1

    clock.advance(30_000)
    tick(pinned, Recorder(fail={nid}))  # a failed delivery retries in its own set
    assert r.zscore(p.due_for("urgent"), nid) is not None and r.zcard(p.due) == 0
    clock.advance(60_000)
    pinned.run(pinned.core.claim(p, 10, 1000))
    clock.advance(2000)
    assert pinned.run(pinned.core.reap(p)) == (1, 0)  # an expired lease goes back to its own set
    assert r.zscore(p.due_for("urgent"), nid) is not None
    pinned.run(pinned.core.ack(p, [nid]))  # an ack of a requeued one takes it out of its own set
    assert r.zcard(p.due_for("urgent")) == 0 and pinned.status(nid).scheduled_status == "sent"


def test_dead_letters_requeue_into_their_priority_set(pinned: Scheduler, clock: ManualClock) -> None:
    from zsched.engine import requeue_dead

    p = pinned.core.keys.partitions[0]
    (nid,) = pinned.schedule(["dee"], "t", "m", delay=0, priority="high").notification_ids
    for _ in range(4):
        tick(pinned, Recorder(fail={nid}))
        clock.advance(1000)
    assert pinned.status(nid).scheduled_status == "failed"
    assert pinned.run(requeue_dead(pinned.core, [nid])) == [nid]
    assert pinned.redis.zscore(p.due_for("high"), nid) is not None and pinned.redis.zcard(p.due) == 0


def test_notifications_stored_before_priorities_stay_normal(pinned: Scheduler, clock: ManualClock) -> None:
    """A state written before this change has no priority: it lives in ``due`` and every script finds it there."""
    p = pinned.core.keys.partitions[0]
    r = pinned.redis
    old, cancelled = (pinned.schedule(["old"], "t", "m", delay=10, priority="high").notification_ids[0] for _ in "ab")
    for nid in (old, cancelled):  # rewrite them as the previous version stored them
        state = json.loads(r.hget(p.state, nid))
        del state["priority"]
        r.hset(p.state, nid, json.dumps(state))
        r.zrem(p.due_for("high"), nid)
        r.zadd(p.due, {str(nid): clock.ms + 10_000})
    pinned.cancel(cancelled)
    assert r.zcard(p.due) == 1
    clock.advance(10_000)
    (claimed,) = _claim_all(pinned, 10)
    assert claimed == [old] and pinned.status(old).priority == "high"
