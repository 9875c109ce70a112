"""A schedule call spanning partitions is all or nothing to readers: a call refused in one partition leaves
nothing visible in any, an interrupted one stays invisible until it expires, and a retry with the same
idempotency key completes it with the same ids."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.conftest import ManualClock
from tests.helpers import Recorder, tick
from zsched import Core, IdempotencyConflictError, Keyspace, NotFoundError, Scheduler
from zsched.engine import Op, Partition, Script, Step
from zsched.engine.replies import StageReply


def _people(keys: Keyspace) -> list[str]:
    """Two recipients in each of the four partitions."""
    found: dict[int, list[str]] = {}
    for n in range(1000):
        name = f"u{n}"
        home = found.setdefault(keys.for_recipient(name).index, [])
        if len(home) < 2:
            home.append(name)
        if sum(len(v) for v in found.values()) == 8:
            break
    return [name for index in sorted(found) for name in found[index]]


@pytest.fixture
def spread(redis_url: str, prefix: str, clock: ManualClock) -> Iterator[Scheduler]:
    scheduler = Scheduler(redis.Redis.from_url(redis_url), core=Core(Keyspace(prefix, partitions=4), clock=clock))
    yield scheduler
    scheduler.close()


def _visible(zs: Scheduler, people: list[str]) -> list[int]:
    """Every id a reader can find: recipients' lists, the due sets (a pending call's recipients through the
    call it names), the state hash, stats."""
    seen = [n.id for person in people for n in zs.list_for(person).items]
    for p in zs.core.keys.partitions:
        for due in p.due_sets:
            seen += [i for member in zs.redis.zrange(due, 0, -1) for i in _due_ids(zs, p, member.decode())]
        seen += [int(i) for i in zs.redis.hkeys(p.state)]
    assert zs.stats().counts["pending"] == len(set(seen))
    return sorted(set(seen))


def _due_ids(zs: Scheduler, p: Partition, member: str) -> list[int]:
    """The ids a due member stands for: its own, or, for "-<call id>", the recipients still pending in the call."""
    if not member.startswith("-"):
        return [int(member)]
    _, _, count, first, *_ = zs.redis.hget(p.calls, member[1:]).split()
    call, step = int(member[1:]), len(zs.core.keys.partitions)
    return [call + i * step for i in range(int(first), int(count))]


def _staged_keys(zs: Scheduler) -> list[bytes]:
    return sorted(zs.redis.scan_iter(match=f"{zs.core.keys.prefix}:*:staged:*"))


def test_a_call_refused_in_its_last_partition_leaves_nothing_visible(spread: Scheduler) -> None:
    people = _people(spread.core.keys)
    # The last partition already holds the key, for another request.
    (before,) = spread.schedule(people[-1:], "other", "request", delay=60, idempotency_key="k").notification_ids
    with pytest.raises(IdempotencyConflictError):
        spread.schedule(people, "the", "call", delay=60, idempotency_key="k")
    assert _visible(spread, people) == [before]
    assert _staged_keys(spread) == [], "the staged parts of a refused call are deleted"
    assert spread.stats().totals["scheduled"] == 1


def _stage_only(op: Op[Any], seen: list[StageReply]) -> Op[list[Step]]:
    """Run an operation's staging round, then stop before its commits; returns the commits it would send."""
    steps = next(op)
    replies = yield steps
    seen += [StageReply.read(r) for r in replies]
    return op.send(replies)


def test_an_interrupted_call_is_invisible_then_expires(redis_url: str, prefix: str, clock: ManualClock) -> None:
    zs = Scheduler(
        redis.Redis.from_url(redis_url), core=Core(Keyspace(prefix, partitions=4), clock=clock, stage_ttl_ms=300)
    )
    people = _people(zs.core.keys)
    staged: list[StageReply] = []
    commits = zs.run(_stage_only(zs.core.schedule(people, "t", "m", delay=1), staged))
    assert [s.name for s in commits if isinstance(s, Script)] == ["commit_schedule"] * 4
    ids = [i for reply in staged for i in reply.ids]
    assert len(ids) == 8 and len(_staged_keys(zs)) == 4
    assert _visible(zs, people) == []
    for nid in ids:
        with pytest.raises(NotFoundError):
            zs.status(nid)
    clock.advance(10_000)
    for p in zs.core.keys.partitions:
        assert zs.run(zs.core.claim(p, 100, 30_000)).notifications == []
    deadline = time.monotonic() + 10
    while _staged_keys(zs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _staged_keys(zs) == [], "an uncommitted part expires after stage_ttl_ms"
    assert _visible(zs, people) == []
    zs.close()


def test_a_retry_with_the_same_key_completes_an_interrupted_call(spread: Scheduler) -> None:
    people = _people(spread.core.keys)
    staged: list[StageReply] = []
    spread.run(_stage_only(spread.core.schedule(people, "t", "m", delay=60, idempotency_key="order-7"), staged))
    assert _visible(spread, people) == []
    result = spread.schedule(people, "t", "m", delay=60, idempotency_key="order-7")
    by_recipient: dict[str, int] = {}
    for step_reply, members in zip(staged, [people[i : i + 2] for i in range(0, 8, 2)], strict=True):
        by_recipient.update(zip(members, step_reply.ids, strict=True))
    assert result.notification_ids == [by_recipient[p] for p in people], "every id the first try handed out"
    assert result.replayed
    assert _visible(spread, people) == sorted(result.notification_ids)
    assert [spread.status(i).scheduled_status for i in result.notification_ids] == ["pending"] * 8
    assert _staged_keys(spread) == []
    again = spread.schedule(people, "t", "m", delay=60, idempotency_key="order-7")
    assert again.notification_ids == result.notification_ids and spread.stats().totals["scheduled"] == 8


def test_a_call_across_partitions_is_written_whole(spread: Scheduler) -> None:
    people = _people(spread.core.keys)
    result = spread.schedule(people, "t", "m", delay=60, priority="high", created_by="svc")
    assert _visible(spread, people) == sorted(result.notification_ids) and not result.replayed
    assert _staged_keys(spread) == []
    for p in spread.core.keys.partitions:  # two recipients a partition: one pending call each, payload once
        assert spread.redis.hlen(p.calls) == spread.redis.hlen(p.notifications) == 1
        assert spread.redis.hlen(p.state) == 0 and spread.redis.zcard(p.due_for("high")) == 1
    assert [spread.status(i).recipient for i in result.notification_ids] == people
    assert {spread.status(i).priority for i in result.notification_ids} == {"high"}
    assert sum(int(spread.redis.hget(p.pending_by_creator, "svc") or 0) for p in spread.core.keys.partitions) == 8
    assert len(spread.list(created_by="svc").items) == 8


def test_committed_parts_are_delivered_read_and_cancelled_like_schedule_calls(
    spread: Scheduler, clock: ManualClock
) -> None:
    people = _people(spread.core.keys)
    lone = people[0]  # its partition gets one recipient: a record of its own; the others a pending call each
    spread_people = [lone, *people[2:]]
    result = spread.schedule(spread_people, "Spread", "out", delay=1, created_by="svc")
    home = spread.core.keys.for_id(result.notification_ids[0])
    assert spread.redis.hlen(home.calls) == 0 and spread.redis.hlen(home.state) == 1
    assert [spread.status(i).recipient for i in result.notification_ids] == spread_people
    kept = result.notification_ids[-1]
    assert spread.cancel(kept).scheduled_status == "cancelled"
    clock.advance(2_000)
    recorder = Recorder()
    tick(spread, recorder)
    assert sorted((n.id, n.recipient, n.title) for n in recorder.delivered) == sorted(
        (i, person, "Spread") for i, person in zip(result.notification_ids, spread_people, strict=True) if i != kept
    )
    assert spread.stats().counts == {
        "pending": 0,
        "processing": 0,
        "sent": 6,
        "cancelled": 1,
        "failed": 0,
        "expired": 0,
        "collapsed": 0,
        "throttled": 0,
        "skipped": 0,
    }
