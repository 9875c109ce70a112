"""Recipient preferences on a real server: zone and quiet hours beside the contact data, deliver_at_local on
each recipient's own clock (sharing a due entry per instant), quiet hours holding non-urgent ones back, and
a zone change leaving what is pending where it is."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import ManualClock
from zsched import Scheduler
from zsched.engine.localtime import after_quiet_ms, instant_ms
from zsched.errors import FieldError
from zsched.models import datetime_to_ms

DAY = date(2031, 3, 4)  # a Tuesday, years ahead of any test clock
LISBON, TOKYO, NY = ZoneInfo("Europe/Lisbon"), ZoneInfo("Asia/Tokyo"), ZoneInfo("America/New_York")


def _due(zs: Scheduler, nid: int) -> datetime:
    return zs.status(nid).scheduled_at


def test_zone_and_quiet_hours_are_contact_fields(zs: Scheduler) -> None:
    got = zs.set_contact("ana", zone="Europe/Lisbon", quiet_hours="22:00-07:00", email="ana@example.com")
    assert (got.zone, got.quiet_hours, got.email) == ("Europe/Lisbon", "22:00-07:00", "ana@example.com")
    assert zs.contact("ana").zone == "Europe/Lisbon"
    assert zs.set_contact("ana", quiet_hours=None).quiet_hours is None
    for field, bad in (("zone", "Mars/Olympus"), ("zone", "../etc/passwd"), ("quiet_hours", "22-7")):
        with pytest.raises(FieldError) as caught:
            zs.set_contact("ana", **{field: bad})
        assert caught.value.field == field
    with pytest.raises(FieldError, match="start and end apart"):
        zs.set_contact("ana", quiet_hours="07:00-07:00")


def test_deliver_at_local_is_nine_where_each_recipient_lives(zs: Scheduler) -> None:
    zs.set_contact("lis1", zone="Europe/Lisbon")
    zs.set_contact("lis2", zone="Europe/Lisbon")
    zs.set_contact("tok", zone="Asia/Tokyo")
    zs.set_contact("nyc", zone="America/New_York")
    people = ["lis1", "tok", "lis2", "nyc", "nobody"]
    result = zs.schedule(people, "Digest", "m", deliver_at_local="09:00", local_date=DAY)
    ids = dict(zip(people, result.notification_ids, strict=True))
    for person, tz in (("lis1", LISBON), ("lis2", LISBON), ("tok", TOKYO), ("nyc", NY), ("nobody", UTC)):
        assert _due(zs, ids[person]) == datetime.combine(DAY, time(9), tzinfo=tz).astimezone(UTC), person
    # Lisbon is UTC+0 in March: it shares an instant with the recipient who has no zone (UTC).
    assert len(result.batch_ids) == 3, "one call, so one due entry, per instant"
    assert zs.batch_status(result.batch_ids[0]).count >= 1
    p = zs.core.keys.partitions[0]
    assert zs.redis.zcard(p.due) == 3


def test_quiet_hours_hold_non_urgent_ones_until_they_end(zs: Scheduler) -> None:
    zs.set_contact("owl", zone="Asia/Tokyo", quiet_hours="22:00-07:00")
    at = datetime.combine(DAY, time(23, 30), tzinfo=TOKYO)
    (normal,) = zs.schedule(["owl"], "t", "m", at=at).notification_ids
    (urgent,) = zs.schedule(["owl"], "t", "m", at=at, priority="urgent").notification_ids
    (daytime,) = zs.schedule(["owl"], "t", "m", at=at - timedelta(hours=12)).notification_ids
    assert _due(zs, normal) == datetime.combine(DAY + timedelta(days=1), time(7), tzinfo=TOKYO)
    assert _due(zs, urgent) == at and _due(zs, daytime) == at - timedelta(hours=12)
    local = zs.schedule(["owl"], "t", "m", deliver_at_local="06:00", local_date=DAY)
    assert _due(zs, local.notification_ids[0]) == datetime.combine(DAY, time(7), tzinfo=TOKYO)


def test_a_zone_change_does_not_move_what_is_pending(zs: Scheduler) -> None:
    zs.set_contact("mover", zone="Europe/Lisbon")
    (before,) = zs.schedule(["mover"], "t", "m", deliver_at_local="09:00", local_date=DAY).notification_ids
    zs.set_contact("mover", zone="Asia/Tokyo")
    (after,) = zs.schedule(["mover"], "t", "m", deliver_at_local="09:00", local_date=DAY).notification_ids
    assert _due(zs, before) == datetime.combine(DAY, time(9), tzinfo=LISBON), "pending keeps its instant"
    assert _due(zs, after) == datetime.combine(DAY, time(9), tzinfo=TOKYO), "new ones follow the new zone"


def test_deliver_at_local_is_checked(pinned: Scheduler, clock: ManualClock) -> None:
    pinned.set_contact("tok", zone="Asia/Tokyo")
    clock.ms = datetime_to_ms(datetime.combine(DAY, time(12), tzinfo=UTC))
    with pytest.raises(FieldError, match="already passed for 'tok'"):  # 20:00 in Tokyo was 11:00 UTC
        pinned.schedule(["utc", "tok"], "t", "m", deliver_at_local="20:00", local_date=DAY)
    assert pinned.stats().counts["pending"] == 0, "nothing half-written"
    with pytest.raises(FieldError, match="deliver_at_local replaces at and delay"):
        pinned.schedule(["a"], "t", "m", delay=5, deliver_at_local="09:00", local_date=DAY)
    with pytest.raises(FieldError, match="needs local_date"):
        pinned.schedule(["a"], "t", "m", deliver_at_local="09:00")
    with pytest.raises(FieldError, match="HH:MM"):
        pinned.schedule(["a"], "t", "m", deliver_at_local="9am", local_date=DAY)


def test_dst_edges() -> None:
    gap = instant_ms(NY, date(2031, 3, 9), time(2, 30))  # clocks skip 02:00-03:00
    assert datetime.fromtimestamp(gap / 1000, NY).time() == time(3, 30)
    fold = instant_ms(NY, date(2031, 11, 2), time(1, 30))  # 01:00-02:00 happens twice: the first
    assert datetime.fromtimestamp(fold / 1000, UTC).time() == time(5, 30)
    night = datetime_to_ms(datetime(2031, 3, 9, 1, 0, tzinfo=NY))  # quiet 00:30-02:30 ends in the gap
    assert datetime.fromtimestamp(after_quiet_ms(NY, "00:30-02:30", night) / 1000, NY).time() == time(3, 30)


def test_a_call_looks_preferences_up_only_where_someone_has_them(
    pinned: Scheduler, clock: ManualClock, redis_url: str
) -> None:
    import redis

    from zsched import Core
    from zsched.engine.steps import Command, Script

    core = pinned.core
    op = core.schedule_for(["x"], "t", "m", delay=5)
    first = next(op)
    assert first == [Command(("SCARD", core.keys.partitions[0].with_preferences))]
    assert isinstance(op.send([0])[0], Script), "nobody has preferences: straight to the schedule script"
    assert isinstance(next(core.schedule_for(["x"], "t", "m", delay=5))[0], Script), "trusted for a second"
    other = Scheduler(redis.Redis.from_url(redis_url), core=Core(core.keys, clock=clock))
    other.set_contact("owl", zone="Asia/Tokyo", quiet_hours="00:00-23:59")  # set by another process
    at = datetime.combine(DAY, time(12), tzinfo=TOKYO)
    (soon,) = pinned.schedule(["owl"], "t", "m", at=at).notification_ids
    assert _due(pinned, soon) == at, "within the second, this process has not looked again"
    clock.advance(1000)
    (later,) = pinned.schedule(["owl"], "t", "m", at=at).notification_ids
    assert _due(pinned, later) == datetime.combine(DAY, time(23, 59), tzinfo=TOKYO)
    other.erase_recipient("owl")
    assert pinned.redis.scard(core.keys.partitions[0].with_preferences) == 0
    other.close()
