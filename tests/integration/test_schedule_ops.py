"""schedule.lua on a real server: a resent call answers with its first outcome from the partition's bucket of
outcomes and creates nothing, the bucket outlives each write by op_ttl_ms, and workers are woken whenever a
new notification is due before every pending one (and not when its own due set already holds an earlier one)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.conftest import ManualClock
from zsched import Core, Keyspace, Scheduler
from zsched.engine import Script
from zsched.engine.replies import ScheduleReply
from zsched.models import ms_to_datetime


@pytest.fixture
def core(keyspace: Keyspace, clock: ManualClock) -> Core:
    return Core(keyspace, clock=clock, op_ttl_ms=30_000)


@pytest.fixture
def zs(redis_url: str, core: Core) -> Iterator[Scheduler]:
    scheduler = Scheduler(redis.Redis.from_url(redis_url), core=core)
    scheduler.ensure_layout()
    yield scheduler
    scheduler.close()


def _step(core: Core, people: list[str], **options: Any) -> Script:
    (step,) = next(core.schedule(people, "t", "m", **options))
    assert isinstance(step, Script)
    return step


def _send(zs: Scheduler, step: Script) -> ScheduleReply:
    """One run of the step, as redis-py resends it after a lost reply: the same keys and arguments."""
    return ScheduleReply.read(zs.scripts[step.name](keys=step.keys, args=step.args, client=zs.redis))


@pytest.mark.parametrize("people", [["alice"], ["alice", "bob", "carol"]])
def test_a_resent_call_answers_its_first_outcome_and_creates_nothing(
    zs: Scheduler, core: Core, clock: ManualClock, people: list[str]
) -> None:
    step = _step(core, people, delay=60)
    first = _send(zs, step)
    assert first.code == "created" and len(first.ids) == len(people)
    zs.schedule(["dave"], "t", "m", delay=5)  # another call in between takes the next id
    clock.advance(20_000)  # the resend comes later: its due time still counts from the first run
    again = _send(zs, step)
    assert again == first
    assert zs.stats().totals["scheduled"] == len(people) + 1
    assert [zs.status(i).recipient for i in first.ids] == people
    assert zs.status(first.ids[0]).scheduled_at == ms_to_datetime(first.due_ms)


def test_outcomes_share_a_bucket_that_outlives_each_write(zs: Scheduler, core: Core, clock: ManualClock) -> None:
    steps = [_step(core, [f"r{i}"], delay=60) for i in range(3)]
    (bucket,) = {s.keys[6] for s in steps}
    for step in steps:
        _send(zs, step)
    assert zs.redis.hlen(bucket) == 3, "one field per call in the bucket"
    assert 0 < zs.redis.pttl(bucket) <= core.op_ttl_ms
    refused = _step(core, ["late"], at=ms_to_datetime(clock.ms - 1))
    assert _send(zs, refused).code == "past"
    assert zs.redis.hlen(refused.keys[6]) == 3, "a refused call keeps no outcome: a resend is checked again"
    clock.advance(60_000)
    later = _step(core, ["r9"], delay=60)
    assert later.keys[6] != bucket, "a later moment writes to a later bucket"


def _woken(zs: Scheduler, pubsub: Any, people: list[str], **options: Any) -> list[int]:
    zs.schedule(people, "t", "m", **options)
    due: list[int] = []
    while (message := pubsub.get_message(timeout=0.2)) is not None:
        if message["type"] == "message":
            due.append(int(message["data"]))
    return due


def test_workers_are_woken_when_the_new_due_time_is_before_every_pending_one(
    zs: Scheduler, core: Core, clock: ManualClock
) -> None:
    p = core.keys.partitions[0]
    pubsub = zs.redis.pubsub()
    pubsub.subscribe(p.wakeup)
    try:
        assert pubsub.get_message(timeout=5)["type"] == "subscribe"
        now = clock.ms
        assert _woken(zs, pubsub, ["a"], delay=10, priority="urgent") == [now + 10_000], "nothing was pending"
        assert _woken(zs, pubsub, ["b"], delay=5) == [now + 5_000], "before the urgent one"
        assert _woken(zs, pubsub, ["c", "d"], delay=20) == [], "its own set holds an earlier one"
        assert _woken(zs, pubsub, ["e"], delay=5, priority="urgent") == [now + 5_000], "before its set's head"
        assert _woken(zs, pubsub, ["f"], delay=2, priority="low") == [now + 2_000]
        assert _woken(zs, pubsub, ["g"], delay=3, priority="low") == [], "after its set's head"
    finally:
        pubsub.close()


@pytest.mark.parametrize("people", [["alice"], ["alice", "bob", "carol"]])
def test_a_resent_call_answers_its_first_outcome_where_a_new_call_would_be_refused(
    redis_url: str, keyspace: Keyspace, clock: ManualClock, people: list[str]
) -> None:
    """By the resend its due time has passed, its creator is at the cap and a reshard sealed the partition: the
    first run created the notifications, so the resend answers that, creates nothing and takes no id."""
    core = Core(keyspace, clock=clock, op_ttl_ms=30_000, max_pending_per_creator=len(people))
    with Scheduler(redis.Redis.from_url(redis_url), core=core) as zs:
        zs.ensure_layout()
        step = _step(core, people, at=ms_to_datetime(clock.ms + 1_000), created_by="svc")
        first = _send(zs, step)
        assert first.code == "created"
        clock.advance(2_000)
        assert _send(zs, _step(core, ["dave"], delay=60, created_by="svc")).code == "over_quota"
        assert _send(zs, step) == first, "past and over the cap: still its first outcome"
        p = core.keys.partitions[0]
        zs.redis.set(p.sealed, 7)
        assert _send(zs, _step(core, ["erin"], delay=60)).code == "moved"
        assert _send(zs, step) == first, "sealed: still its first outcome"
        zs.redis.delete(p.sealed)
        assert zs.stats().totals["scheduled"] == len(people)
        assert int(zs.redis.get(p.sequence) or 0) == len(people), "a resend takes no sequence number"
        after = _send(zs, _step(core, ["frank"], delay=60))
        assert after.ids == [(len(people) + 1) * p.count + p.index]


def test_a_resent_call_with_an_idempotency_key_answers_its_first_outcome(
    zs: Scheduler, core: Core, clock: ManualClock
) -> None:
    """The key's answer is there too, but a lost reply's resend is the same call: created, not replayed; another
    call under the key is answered replayed, and one with other content is a conflict."""
    step = _step(core, ["alice"], delay=60, idempotency_key="k1")
    first = _send(zs, step)
    assert first.code == "created"
    clock.advance(1_000)
    assert _send(zs, step) == first
    again = _send(zs, _step(core, ["alice"], delay=60, idempotency_key="k1"))
    assert (again.code, again.ids) == ("replayed", first.ids)
    assert _send(zs, _step(core, ["alice"], delay=90, idempotency_key="k1")).code == "conflict"
    assert zs.stats().totals["scheduled"] == 1
