"""The seed's 15 test cases (T_NOTIF_009 section 5), at the library level, on a real server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import ManualClock
from tests.helpers import Recorder, tick
from zsched import AsyncScheduler, NotPendingError, PastScheduleError, Scheduler
from zsched.errors import RecipientsError
from zsched.models import ms_to_datetime


def _nothing_written(zs: Scheduler) -> bool:
    layout = zs.core.keys.layout.encode()  # recorded on a client's first call, whatever the call
    return not [k for k in zs.redis.scan_iter(match=f"{zs.core.keys.prefix}:*") if k != layout]


def test_01_single_recipient(pinned: Scheduler, clock: ManualClock) -> None:
    at = ms_to_datetime(clock.ms + 60_000)
    result = pinned.schedule([1], "Meeting", "In 30 minutes", at=at)
    assert result.count == 1 and len(result.notification_ids) == 1
    assert result.scheduled_at == at
    n = pinned.status(result.notification_ids[0])
    assert (n.recipient, n.title, n.message, n.scheduled_status) == ("1", "Meeting", "In 30 minutes", "pending")
    assert (n.type, n.priority, n.data, n.attempts) == ("system", "normal", {}, 0)


def test_02_multiple_recipients(zs: Scheduler) -> None:
    result = zs.schedule(
        [1, 2, 3, 2, "3"],
        "Meeting",
        "In 30 minutes",
        delay=timedelta(minutes=5),
        type="reminder",
        priority="high",
        data={"room": "B2", "ids": [1, 2.5, {}]},
    )
    assert result.count == 3 and len(set(result.notification_ids)) == 3
    people = [zs.status(i) for i in result.notification_ids]
    assert [n.recipient for n in people] == ["1", "2", "3"]
    assert all(n.data == {"room": "B2", "ids": [1, 2.5, {}]} and n.priority == "high" for n in people)
    assert zs.stats().counts["pending"] == 3


def test_03_past_date_is_rejected(zs: Scheduler) -> None:
    with pytest.raises(PastScheduleError, match="must be in the future; got 2020-01-01T00:00:00"):
        zs.schedule([1], "Late", "too late", at=datetime(2020, 1, 1, tzinfo=UTC))
    assert _nothing_written(zs)


def test_04_empty_recipients_are_rejected(zs: Scheduler) -> None:
    with pytest.raises(RecipientsError, match="recipients cannot be empty"):
        zs.schedule([], "Nobody", "hears this", delay=60)
    assert _nothing_written(zs)


def test_05_cancel_pending(zs: Scheduler) -> None:
    (nid,) = zs.schedule(["alice"], "Soon", "...", delay=60).notification_ids
    n = zs.cancel(nid)
    assert n.scheduled_status == "cancelled" and n.cancelled_at is not None
    assert zs.redis.zscore(zs.core.keys.partitions[0].due, nid) is None
    assert zs.stats().counts == {
        "pending": 0,
        "processing": 0,
        "sent": 0,
        "cancelled": 1,
        "failed": 0,
        "expired": 0,
        "collapsed": 0,
        "throttled": 0,
        "skipped": 0,
    }


def test_06_cannot_cancel_sent(pinned: Scheduler, clock: ManualClock) -> None:
    (nid,) = pinned.schedule(["alice"], "Now", "...", delay=0).notification_ids
    tick(pinned, Recorder())
    with pytest.raises(NotPendingError, match="it is sent") as caught:
        pinned.cancel(nid)
    assert caught.value.status == "sent"
    assert pinned.status(nid).scheduled_status == "sent"


def test_07_get_pending(zs: Scheduler) -> None:
    ids = (
        zs.schedule(["bob"], "A", "a", delay=60).notification_ids
        + zs.schedule(["bob"], "B", "b", delay=120).notification_ids
    )
    zs.cancel(ids[0])
    pending = zs.list_for("bob", status="pending")
    assert [n.id for n in pending.items] == [ids[1]]
    assert [n.id for n in zs.list_for("bob").items] == [ids[1], ids[0]]  # newest first
    assert zs.stats().counts["pending"] == 1


def test_08_send_scheduled_notification_at_its_time(pinned: Scheduler, clock: ManualClock) -> None:
    (nid,) = pinned.schedule(["carol"], "Tick", "tock", delay=1.0).notification_ids
    recorder = Recorder()
    tick(pinned, recorder)
    assert recorder.delivered == [] and pinned.status(nid).scheduled_status == "pending"
    clock.advance(1000)
    tick(pinned, recorder)
    assert [n.id for n in recorder.delivered] == [nid]
    n = pinned.status(nid)
    assert n.scheduled_status == "sent" and n.is_sent and n.sent_at == ms_to_datetime(clock.ms)


def test_09_cannot_send_cancelled(pinned: Scheduler, clock: ManualClock) -> None:
    (nid,) = pinned.schedule(["dave"], "Never", "sent", delay=1.0).notification_ids
    pinned.cancel(nid)
    clock.advance(5000)
    recorder = Recorder()
    tick(pinned, recorder)
    assert recorder.delivered == []
    assert pinned.status(nid).scheduled_status == "cancelled"


def test_10_schedule_status(pinned: Scheduler, clock: ManualClock) -> None:
    created = clock.ms
    (nid,) = pinned.schedule(["erin"], "Status", "check", delay=2.0).notification_ids
    n = pinned.status(nid)
    assert (n.id, n.title, n.scheduled_status, n.is_sent, n.sent_at) == (nid, "Status", "pending", False, None)
    assert n.scheduled_at == ms_to_datetime(created + 2000) and n.created_at == ms_to_datetime(created)


def test_11_retry_failed_notification_with_backoff(pinned: Scheduler, clock: ManualClock) -> None:
    (nid,) = pinned.schedule(["frank"], "Flaky", "gateway", delay=0).notification_ids
    failing = Recorder(fail={nid})
    expected_delays = [50, 100, 200]  # the test policy; the default is 5, 10, 20 minutes
    for attempt, delay in enumerate(expected_delays, start=1):
        tick(pinned, failing)
        n = pinned.status(nid)
        assert (n.scheduled_status, n.attempts) == ("pending", attempt)
        assert n.scheduled_at == ms_to_datetime(clock.ms + delay)
        assert n.last_error is not None and "gateway unreachable" in n.last_error
        clock.advance(delay)
    tick(pinned, failing)
    n = pinned.status(nid)
    assert (n.scheduled_status, n.attempts) == ("failed", 4)
    assert pinned.redis.zscore(pinned.core.keys.partitions[0].failed, nid) is not None


def test_11b_retry_then_success(pinned: Scheduler, clock: ManualClock) -> None:
    (nid,) = pinned.schedule(["gina"], "Flaky", "once", delay=0).notification_ids
    recorder = Recorder(fail={nid})
    tick(pinned, recorder)
    recorder.fail.clear()
    clock.advance(49)
    tick(pinned, recorder)
    assert recorder.delivered == []
    clock.advance(1)
    tick(pinned, recorder)
    n = pinned.status(nid)
    assert (n.scheduled_status, n.attempts, [d.id for d in recorder.delivered]) == ("sent", 2, [nid])


def test_12_cannot_retry_sent(pinned: Scheduler, clock: ManualClock) -> None:
    (nid,) = pinned.schedule(["hank"], "Done", "once", delay=0).notification_ids
    tick(pinned, Recorder())
    sent = pinned.status(nid)
    retried, failed = pinned.run(pinned.core.fail(pinned.core.keys.partitions[0], [(sent, "late failure")]))
    assert (retried, failed) == (0, 0)
    assert pinned.status(nid).scheduled_status == "sent"


async def test_13_15_async_face_schedule_cancel_status(azs: AsyncScheduler) -> None:
    result = await azs.schedule(["ivy", "jack"], "Async", "face", delay=timedelta(minutes=1))
    assert result.count == 2
    first, second = result.notification_ids
    assert (await azs.status(first)).scheduled_status == "pending"
    assert (await azs.cancel(second)).scheduled_status == "cancelled"
    with pytest.raises(NotPendingError):
        await azs.cancel(second)
    stats = await azs.stats()
    assert stats.counts["pending"] == 1 and stats.counts["cancelled"] == 1
