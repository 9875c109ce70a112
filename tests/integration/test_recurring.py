"""Recurring schedules on a real server: occurrences are ordinary notifications, created one at a time, once."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.clusterutil import LocalCluster
from tests.conftest import ManualClock
from tests.helpers import Recorder
from zsched import AsyncScheduler, Core, Keyspace, Scheduler
from zsched.delivery import Delivery
from zsched.delivery.worker import Worker
from zsched.engine.replies import AdvanceRecurringReply
from zsched.errors import FieldError, IdempotencyConflictError, NotPendingError, RecurringNotFoundError, ValidationError
from zsched.models import datetime_to_ms, ms_to_datetime
from zsched.testing import ZschedTestServer

MIN = 60_000
RACE_S = float(os.environ.get("ZSCHED_RECURRING_RACE_S", "6"))
"""How long two real workers share a schedule firing every second (ZSCHED_RECURRING_RACE_S=60 for a minute)."""


def _round(zs: Scheduler, delivery: Delivery) -> None:
    """One worker round with ``zs``'s core (and so its clock): advance due schedules, then claim and deliver."""

    async def go() -> None:
        url = zs.redis.connection_pool.connection_kwargs
        connection = aioredis.Redis(
            host=url.get("host", "127.0.0.1"),
            port=url.get("port", 6379),
            db=url.get("db", 0),
            password=url.get("password"),
        )
        scheduler = AsyncScheduler(connection, core=zs.core)
        worker = Worker(scheduler, delivery)
        try:
            await worker.advance_recurring()
            await worker.tick()
        finally:
            await scheduler.close()

    asyncio.run(go())


def _pending(zs: Scheduler) -> list[int]:
    return [n.id for n in zs.list(status="pending", limit=100).items]


def _at(clock: ManualClock, ms: int) -> None:
    clock.ms = ms


def test_create_makes_the_first_occurrence_a_pending_notification(pinned: Scheduler, clock: ManualClock) -> None:
    clock.ms = 1_800_000_000_000 + 30_000  # half a minute past a minute
    s = pinned.create_recurring(
        ["ann"], "Stand-up", "in 5", every=60, type="meeting", priority="high", data={"room": 4}, created_by="ops"
    )
    assert (s.status, s.count, s.every_s, s.catch_up) == ("active", 1, 60.0, "skip")
    assert s.next_at == ms_to_datetime(clock.ms + MIN)  # every 60 s from the start, which is now
    (occurrence,) = s.occurrence_ids
    n = pinned.status(occurrence)
    assert (n.scheduled_status, n.scheduled_at, n.recipient, n.title, n.priority, n.data, n.created_by) == (
        "pending",
        s.next_at,
        "ann",
        "Stand-up",
        "high",
        {"room": 4},
        "ops",
    )
    assert pinned.recurring(s.id) == s
    assert pinned.preview_recurring(s.id, 3) == [ms_to_datetime(clock.ms + k * MIN) for k in (1, 2, 3)]


def test_a_worker_delivers_each_occurrence_and_creates_the_next(pinned: Scheduler, clock: ManualClock) -> None:
    start = datetime(2030, 1, 7, 8, tzinfo=UTC)
    clock.ms = datetime_to_ms(start) - 10 * MIN
    s = pinned.create_recurring(
        ["bo", "cy"], "Daily", "report", cron="0 9 * * *", timezone="Europe/Berlin", created_by="ops"
    )
    assert s.next_at == start  # 09:00 CET
    recorder = Recorder()
    delivered_at = []
    for day in range(3):
        _at(clock, datetime_to_ms(start + timedelta(days=day)))
        _round(pinned, recorder)  # advances the schedule, then claims and delivers the occurrence
        delivered_at.append(sorted({n.scheduled_at for n in recorder.delivered}))
    assert sorted(n.recipient for n in recorder.delivered) == ["bo", "bo", "bo", "cy", "cy", "cy"]
    assert delivered_at[-1] == [start + timedelta(days=d) for d in range(3)]
    now = pinned.recurring(s.id)
    assert (now.count, now.next_at) == (4, start + timedelta(days=3))
    assert [pinned.status(i).scheduled_status for i in now.occurrence_ids] == ["pending", "pending"]
    assert len(_pending(pinned)) == 2, "only the next occurrence is stored"
    p = pinned.core.keys.partitions[0]
    assert pinned.redis.hget(p.pending_by_creator, "ops") == b"2", "the creator's count: the pending occurrence"
    assert [n.created_by for n in recorder.delivered] == ["ops"] * 6


def test_advancing_twice_creates_the_next_occurrence_once(pinned: Scheduler, clock: ManualClock) -> None:
    s = pinned.create_recurring(["dee"], "Tick", "tock", every=60)
    p = pinned.core.keys.partitions[0]
    clock.advance(MIN)
    first = pinned.run(pinned.core.advance_due(p))
    again = pinned.run(pinned.core.advance_due(p))  # nothing is due any more
    assert (first.advanced, again.advanced) == (1, 0)
    assert again.wait_ms == MIN
    # A second worker that read the schedule before the first moved it (or a resent call) sends the same step:
    # it finds the pending occurrence moved on and creates nothing.
    core = pinned.core
    definition = pinned.run(core._read(s.id)).definition
    fired = s.next_at and datetime_to_ms(s.next_at)
    step = core._advance_step(p, definition, "advance", s.id, fired or 0, (fired or 0) + MIN, b"{}")
    reply = AdvanceRecurringReply.read(pinned.scripts["advance_recurring"](keys=step.keys, args=step.args))
    assert reply.code == "stale"
    assert pinned.recurring(s.id).count == 2
    assert len(_pending(pinned)) == 2  # the first occurrence (due, not claimed yet) and the next


def test_a_worker_that_dies_mid_way_leaves_the_schedule_to_the_next(pinned: Scheduler, clock: ManualClock) -> None:
    s = pinned.create_recurring(["eve"], "Tick", "tock", every=60)
    clock.advance(MIN)
    p = pinned.core.keys.partitions[0]
    op = pinned.core.advance_due(p)
    next(op)  # the dead worker read what was due, then stopped before its advance reached the server
    op.close()
    _round(pinned, Recorder())
    assert pinned.recurring(s.id).count == 2


@pytest.mark.parametrize(
    ("catch_up", "fired_late", "said"),
    [("skip", 0, "8 missed time(s) dropped, by"), ("last", 1, "7 missed time(s) dropped, the last one fired late")],
)
def test_after_an_outage_missed_occurrences_follow_catch_up(
    pinned: Scheduler, clock: ManualClock, catch_up: str, fired_late: int, said: str, caplog: pytest.LogCaptureFixture
) -> None:
    start = clock.ms
    s = pinned.create_recurring(["fay"], "Every minute", "m", every=60, catch_up=catch_up)
    recorder = Recorder()
    clock.ms = start + MIN
    _round(pinned, recorder)
    assert len(recorder.delivered) == 1
    clock.ms = start + 10 * MIN + 30_000  # down for 9.5 minutes: minutes 3..10 missed
    _round(pinned, recorder)
    _round(pinned, recorder)  # a later round: after the late one, the series goes on from now
    # Minute 2's occurrence was stored before the outage, so it is delivered, late, as any notification is; of
    # the minutes 3..10 that nothing stored, only `last` fires one (minute 10's, due now), once.
    assert [n.scheduled_at for n in recorder.delivered] == [ms_to_datetime(start + k * MIN) for k in (1, 2)] + (
        [ms_to_datetime(clock.ms)] if fired_late else []
    )
    assert f"recurring schedule {s.id} was behind (an outage?): {said}" in caplog.text
    now = pinned.recurring(s.id)
    assert now.next_at == ms_to_datetime(start + 11 * MIN)
    assert now.count == 3 + fired_late


def test_pause_cancels_the_pending_occurrence_and_resume_starts_after_now(
    pinned: Scheduler, clock: ManualClock
) -> None:
    start = clock.ms
    s = pinned.create_recurring(["gus"], "Tick", "tock", every=60, created_by="gus")
    paused = pinned.pause_recurring(s.id)
    assert paused.status == "paused"
    assert pinned.status(s.occurrence_ids[0]).scheduled_status == "cancelled"
    assert pinned.pause_recurring(s.id).status == "paused"  # again: the same answer
    clock.ms = start + 5 * MIN + 1
    _round(pinned, Recorder())
    assert pinned.recurring(s.id).count == 1, "a paused schedule does not advance"
    resumed = pinned.resume_recurring(s.id)
    assert (resumed.status, resumed.count, resumed.next_at) == ("active", 2, ms_to_datetime(start + 6 * MIN))
    assert pinned.resume_recurring(s.id) == resumed  # resuming an active one changes nothing
    assert pinned.status(resumed.occurrence_ids[0]).scheduled_status == "pending"
    assert [x.id for x in pinned.list_recurring(created_by="gus").items] == [s.id]
    gone = pinned.delete_recurring(s.id)
    assert gone.id == s.id
    assert pinned.status(resumed.occurrence_ids[0]).scheduled_status == "cancelled"
    with pytest.raises(RecurringNotFoundError, match=f"no recurring schedule with id {s.id}"):
        pinned.recurring(s.id)
    with pytest.raises(RecurringNotFoundError):
        pinned.delete_recurring(s.id)
    assert pinned.list_recurring(created_by="gus").items == []


def test_one_occurrence_is_cancelled_and_the_series_goes_on(pinned: Scheduler, clock: ManualClock) -> None:
    s = pinned.create_recurring(["hal"], "Tick", "tock", every=60)
    pinned.cancel(s.occurrence_ids[0])
    recorder = Recorder()
    clock.advance(MIN)
    _round(pinned, recorder)
    assert recorder.delivered == []
    clock.advance(MIN)
    _round(pinned, recorder)
    assert [n.scheduled_at for n in recorder.delivered] == [s.next_at + timedelta(minutes=1)]  # type: ignore[operator]
    with pytest.raises(NotPendingError):
        pinned.cancel(recorder.delivered[0].id)


def test_a_failed_occurrence_is_retried_like_any_notification(pinned: Scheduler, clock: ManualClock) -> None:
    s = pinned.create_recurring(["ida"], "Tick", "tock", every=3600)
    (first,) = s.occurrence_ids
    clock.advance(3600_000)
    _round(pinned, Recorder(fail={first}))
    n = pinned.status(first)
    assert (n.scheduled_status, n.attempts) == ("pending", 1)
    clock.advance(1000)  # the test policy retries after 50 ms
    recorder = Recorder()
    _round(pinned, recorder)
    assert [x.id for x in recorder.delivered] == [first]
    assert pinned.recurring(s.id).count == 2  # and the series went on meanwhile


def test_max_count_and_end_finish_the_series(pinned: Scheduler, clock: ManualClock) -> None:
    start = clock.ms
    s = pinned.create_recurring(["jo"], "Twice", "only", every=60, max_count=2)
    ended = pinned.create_recurring(["jo"], "Until", "end", every=60, end=ms_to_datetime(start + 90_000))
    recorder = Recorder()
    for k in range(1, 5):
        clock.ms = start + k * MIN
        _round(pinned, recorder)
    assert Counter(n.title for n in recorder.delivered) == {"Twice": 2, "Until": 1}
    assert (pinned.recurring(s.id).status, pinned.recurring(s.id).count) == ("finished", 2)
    assert pinned.recurring(ended.id).status == "finished"
    assert pinned.preview_recurring(s.id) == []


def test_dst_spring_forward_occurrence_is_created_at_the_transition(pinned: Scheduler, clock: ManualClock) -> None:
    clock.ms = datetime_to_ms(datetime(2026, 3, 7, 12, tzinfo=UTC))
    s = pinned.create_recurring(["kai"], "Nightly", "job", cron="30 2 * * *", timezone="America/New_York")
    assert s.next_at == datetime(2026, 3, 8, 7, tzinfo=UTC)  # 03:00 EDT: the skipped 02:30 fires once, there
    clock.ms = datetime_to_ms(datetime(2026, 3, 8, 7, tzinfo=UTC))
    _round(pinned, Recorder())
    assert pinned.recurring(s.id).next_at == datetime(2026, 3, 9, 6, 30, tzinfo=UTC)


def test_bad_definitions_are_refused_and_write_nothing(pinned: Scheduler) -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({}, "cron"),
        ({"cron": "* * *"}, "cron"),
        ({"cron": "0 9 * * *", "every": 60}, "cron"),
        ({"every": 0.5}, "every"),
        ({"cron": "0 9 * * *", "timezone": "Nowhere/Town"}, "timezone"),
        ({"every": 60, "max_count": 0}, "max_count"),
        ({"every": 60, "catch_up": "all"}, "catch_up"),
        ({"every": 60, "start": datetime(2030, 1, 1)}, "start_at"),
        ({"every": 60, "end": ms_to_datetime(1000)}, "end_at"),
    ]
    for options, field in cases:
        with pytest.raises(ValidationError) as err:
            pinned.create_recurring(["lu"], "t", "m", **options)  # type: ignore[arg-type]
        assert err.value.field == field, options
    with pytest.raises(FieldError):
        pinned.preview_recurring(1, 0)
    assert pinned.list_recurring().items == []


def test_recipients_must_share_a_partition(redis_url: str, prefix: str) -> None:
    zs = Scheduler.from_url(redis_url, core=Core(Keyspace(prefix, partitions=4)))
    people = [f"u{i}" for i in range(8)]
    with pytest.raises(ValidationError, match="share one partition"):
        zs.create_recurring(people, "t", "m", every=60)
    s = zs.create_recurring(["u1"], "t", "m", every=60)
    assert zs.recurring(s.id).recipients == ["u1"]
    assert s.id % 4 == zs.core.keys.for_recipient("u1").index
    zs.close()


def test_list_pages_by_id(pinned: Scheduler) -> None:
    ids = [pinned.create_recurring([f"m{i}"], "t", "m", every=60, created_by="ops").id for i in range(5)]
    first = pinned.list_recurring(limit=3)
    assert [s.id for s in first.items] == ids[:3] and first.next_cursor == ids[2]
    rest = pinned.list_recurring(limit=3, cursor=first.next_cursor)
    assert [s.id for s in rest.items] == ids[3:] and rest.next_cursor is None
    assert [s.id for s in pinned.list_recurring(created_by="ops", limit=10).items] == ids
    mine = pinned.list_recurring(created_by="ops", limit=2)
    seen = [s.id for s in mine.items]
    while mine.next_cursor is not None:
        mine = pinned.list_recurring(created_by="ops", limit=2, cursor=mine.next_cursor)
        seen += [s.id for s in mine.items]
    assert seen == ids
    pinned.create_recurring(["n"], "t", "m", every=60, created_by="opsx")  # a longer name that starts the same
    assert [s.id for s in pinned.list_recurring(created_by="ops", limit=10).items] == ids
    assert pinned.list_recurring(created_by="nobody").items == []


def _async(redis_url: str, core: Core) -> AsyncScheduler:
    return AsyncScheduler(aioredis.Redis.from_url(redis_url), core=core)


async def test_two_real_workers_create_and_deliver_each_occurrence_once(redis_url: str, keyspace: Keyspace) -> None:
    core = Core(keyspace)
    producer = _async(redis_url, core)
    schedulers = [_async(redis_url, core) for _ in range(2)]
    try:
        s = await producer.create_recurring(["zed"], "Every second", "tick", every=1)
        recorders = [Recorder(), Recorder()]
        workers = [Worker(w, r) for w, r in zip(schedulers, recorders, strict=True)]
        tasks = [asyncio.create_task(w.run()) for w in workers]
        started = time.monotonic()
        while time.monotonic() - started < RACE_S:
            await asyncio.sleep(0.1)
        for w in workers:
            w.should_exit = True
        await asyncio.gather(*tasks)
        delivered = [n for r in recorders for n in r.delivered]
        times = Counter(n.scheduled_at for n in delivered)
        assert len(delivered) >= RACE_S / 2, f"a schedule every second delivered {len(delivered)} in {RACE_S} s"
        assert set(times.values()) == {1}, "an occurrence was created or delivered twice"
        assert Counter(n.id for n in delivered).most_common(1)[0][1] == 1
        gaps = sorted(times)
        assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(gaps)), gaps
        now = await producer.recurring(s.id)
        # Created: those delivered, the next one, and perhaps one whose time came as the workers stopped (advanced
        # by one worker's recurring loop after the claim loops had exited): still pending, never lost.
        left = (await producer.list(status="pending", limit=10)).items
        assert 1 <= len(left) <= 2 and now.count == len(delivered) + len(left)
        assert sorted(n.scheduled_at for n in left)[0] == gaps[-1] + timedelta(seconds=1)
        assert (await producer.delete_recurring(s.id)).id == s.id
    finally:
        for x in [producer, *schedulers]:
            await x.close()


def test_the_test_server_advances_recurring_schedules_on_its_clock(redis_url: str) -> None:
    monday = datetime(2030, 1, 7, 7, tzinfo=UTC)
    with ZschedTestServer(redis_url, now=monday) as zt:
        s = zt.scheduler.create_recurring(["bob"], "Stand-up", "B2", cron="0 9 * * MON-FRI", timezone="Europe/Berlin")
        week = [n.scheduled_at for day in range(7) for n in zt.run_due(until=monday + timedelta(days=day, hours=1))]
        assert week == [monday + timedelta(days=d, hours=1) for d in range(5)]  # 09:00 CET, Monday to Friday
        assert zt.scheduler.recurring(s.id).next_at == monday + timedelta(days=7, hours=1)


def test_a_resent_create_answers_its_first_outcome_and_creates_nothing(pinned: Scheduler) -> None:
    op = pinned.core.create_recurring(["max"], "Tick", "tock", every=60, created_by="ops")
    (step,) = next(op)  # the pinned clock needs no TIME: the script step comes first
    first = AdvanceRecurringReply.read(pinned.scripts["advance_recurring"](keys=step.keys, args=step.args))
    again = AdvanceRecurringReply.read(pinned.scripts["advance_recurring"](keys=step.keys, args=step.args))
    assert (first.code, again.code) == ("created", "replayed")
    assert again.schedule_id == first.schedule_id and again.state == first.state
    assert [s.id for s in pinned.list_recurring().items] == [first.schedule_id]
    assert len(_pending(pinned)) == 1


@pytest.mark.cluster
def test_on_a_cluster_each_schedule_lives_in_its_recipients_slot(redis_cluster: LocalCluster) -> None:
    from redis.cluster import RedisCluster

    clock = ManualClock()
    core = Core(Keyspace(f"zt-{uuid.uuid4().hex[:8]}", partitions=4), clock=clock)
    zs = Scheduler(RedisCluster(host="127.0.0.1", port=redis_cluster.masters[0]), core=core)
    people = [f"user{i}" for i in range(8)]
    ids = [zs.create_recurring([person], "Tick", "tock", every=60, created_by="ops").id for person in people]
    assert {i % 4 for i in ids} == {core.keys.for_recipient(p).index for p in people}
    assert sorted(s.id for s in zs.list_recurring(created_by="ops").items) == sorted(ids)
    recorder = Recorder()

    async def go() -> None:
        scheduler = AsyncScheduler(aioredis.RedisCluster(host="127.0.0.1", port=redis_cluster.masters[0]), core=core)
        worker = Worker(scheduler, recorder)
        try:
            await worker.advance_recurring()
            await worker.tick()
        finally:
            await scheduler.close()

    clock.advance(MIN)
    asyncio.run(go())
    assert sorted(n.recipient for n in recorder.delivered) == sorted(people)
    assert {zs.recurring(i).count for i in ids} == {2}
    for i in ids:
        zs.delete_recurring(i)
    zs.close()


def test_an_idempotency_key_makes_a_retried_create_return_the_first_schedule(
    pinned: Scheduler, clock: ManualClock
) -> None:
    first = pinned.create_recurring(["ola"], "Tick", "tock", every=60, idempotency_key="digest-ola")
    clock.advance(5000)  # a retry a little later: its default start (now) moved, the request did not
    again = pinned.create_recurring(["ola"], "Tick", "tock", every=60, idempotency_key="digest-ola")
    assert again == first
    with pytest.raises(IdempotencyConflictError, match="digest-ola"):
        pinned.create_recurring(["ola"], "Tick", "tock", every=120, idempotency_key="digest-ola")
    other = pinned.create_recurring(["ola"], "Tick", "tock", every=60, idempotency_key="digest-ola-2")
    assert other.id != first.id
    assert [s.id for s in pinned.list_recurring().items] == [first.id, other.id]
    assert len(_pending(pinned)) == 2


def test_a_corrupt_schedule_is_said_and_does_not_stop_the_others(
    pinned: Scheduler, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    bad = pinned.create_recurring(["pat"], "Tick", "tock", every=60)
    good = pinned.create_recurring(["quin"], "Tick", "tock", every=60)
    p = pinned.core.keys.partitions[0]
    pinned.redis.hset(p.recurring, str(bad.id), "{not json")
    clock.advance(MIN)
    recorder = Recorder()
    _round(pinned, recorder)
    assert f"recurring schedule {bad.id} cannot be read" in caplog.text
    assert pinned.recurring(good.id).count == 2
    assert sorted(n.recipient for n in recorder.delivered) == ["pat", "quin"]  # its occurrence was stored before


async def test_a_failing_round_is_said_and_the_loop_goes_on(
    redis_url: str, keyspace: Keyspace, caplog: pytest.LogCaptureFixture
) -> None:
    class Flaky(Core):
        failed = False

        def advance_due(self, partition: Any, limit: int = 100) -> Any:
            if not self.failed:
                self.failed = True
                raise RuntimeError("a bug in one round")
            return super().advance_due(partition, limit)

    core = Flaky(keyspace)
    scheduler = _async(redis_url, core)
    try:
        s = await scheduler.create_recurring(["ray"], "Tick", "tock", every=1)
        recorder = Recorder()
        worker = Worker(scheduler, recorder)
        task = asyncio.create_task(worker.run())
        started = time.monotonic()
        while time.monotonic() - started < 10 and (await scheduler.recurring(s.id)).count < 3:
            await asyncio.sleep(0.05)
        worker.should_exit = True
        await task
        assert "recurring schedules: a round failed" in caplog.text and "a bug in one round" in caplog.text
        assert (await scheduler.recurring(s.id)).count >= 3 and recorder.delivered
    finally:
        await scheduler.close()


async def test_rounds_wait_while_the_claims_have_a_backlog(redis_url: str, keyspace: Keyspace) -> None:
    class Counting(Core):
        rounds = 0

        def advance_due(self, partition: Any, limit: int = 100) -> Any:
            self.rounds += 1
            return super().advance_due(partition, limit)

    core = Counting(keyspace)
    scheduler = _async(redis_url, core)
    worker = Worker(scheduler, Recorder(), batch=2)
    worker._claims_caught_up.clear()  # as a tick leaves it when its claims came back full
    loop = asyncio.create_task(worker._recurring_loop())
    try:
        await asyncio.sleep(0.1)
        assert core.rounds == 0, "a round must wait for the claims (or RECURRING_STARVED_S)"
        started = time.monotonic()
        while core.rounds == 0 and time.monotonic() - started < 10:
            await asyncio.sleep(0.01)
        assert core.rounds >= 1, "a backlog that never ends must not stop the schedules"
        worker._claims_caught_up.set()
        await scheduler.schedule(["sal", "tom", "uma"], "Due", "now", delay=0)
        await worker.tick()  # a full batch of 2: a backlog
        assert not worker._claims_caught_up.is_set()
        await worker.tick()  # the last one: caught up
        assert worker._claims_caught_up.is_set()
    finally:
        worker.should_exit = True
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await scheduler.close()
