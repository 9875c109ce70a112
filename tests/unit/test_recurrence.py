"""Recurrence arithmetic: cron on a zone's wall clock under the stated DST policy, intervals, missed occurrences."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from cronsim import CronSim
from hypothesis import given, settings
from hypothesis import strategies as st

from zsched.engine.recurrence import LATE_GRACE_MS, Rule, advance, check_catch_up, check_cron, check_zone
from zsched.errors import FieldError

NY, BERLIN = "America/New_York", "Europe/Berlin"
H = 3_600_000


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


def utc(t: int) -> datetime:
    return datetime.fromtimestamp(t / 1000, UTC)


def cron(expr: str, zone: str, start: int = 0) -> Rule:
    return Rule(start_ms=start, zone=zone, cron=expr)


def test_a_daily_time_follows_the_zone_across_the_year() -> None:
    rule = cron("0 9 * * *", BERLIN)
    assert utc(rule.after(ms(2026, 1, 10))) == datetime(2026, 1, 10, 8, tzinfo=UTC)  # CET, +1
    assert utc(rule.after(ms(2026, 7, 10))) == datetime(2026, 7, 10, 7, tzinfo=UTC)  # CEST, +2


def test_new_york_spring_forward_fires_the_skipped_time_once_at_the_transition() -> None:
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC); 02:30 does not exist that day.
    rule = cron("30 2 * * *", NY)
    got = [utc(t) for t in rule.preview(ms(2026, 3, 7), 3)]
    assert got == [
        datetime(2026, 3, 7, 7, 30, tzinfo=UTC),  # 02:30 EST
        datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # the skipped 02:30: at 03:00 EDT, the next valid instant
        datetime(2026, 3, 9, 6, 30, tzinfo=UTC),  # 02:30 EDT
    ]


def test_skipped_times_and_the_transition_fire_once_together() -> None:
    # */30 matches 02:00, 02:30 (both skipped) and 03:00: one firing at 03:00 EDT, then 03:30.
    rule = cron("*/30 * * * *", NY)
    got = rule.preview(ms(2026, 3, 8, 6, 15), 3)  # from 01:15 EST
    assert [utc(t) for t in got] == [
        datetime(2026, 3, 8, 6, 30, tzinfo=UTC),  # 01:30 EST
        datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # 03:00 EDT, once
        datetime(2026, 3, 8, 7, 30, tzinfo=UTC),  # 03:30 EDT
    ]


def test_new_york_fall_back_fires_the_repeated_time_once() -> None:
    # 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens at 05:30 and again at 06:30 UTC.
    rule = cron("30 1 * * *", NY)
    got = [utc(t) for t in rule.preview(ms(2026, 10, 31), 3)]
    assert got == [
        datetime(2026, 10, 31, 5, 30, tzinfo=UTC),
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # the first 01:30 (EDT), and not the second
        datetime(2026, 11, 2, 6, 30, tzinfo=UTC),
    ]


def test_the_repeated_hour_fires_once_for_a_frequent_rule() -> None:
    rule = cron("*/15 * * * *", NY)
    got = rule.preview(ms(2026, 11, 1, 4, 50), 6)  # from 00:50 EDT
    assert [utc(t) for t in got] == [
        datetime(2026, 11, 1, 5, 0, tzinfo=UTC),  # 01:00 EDT
        datetime(2026, 11, 1, 5, 15, tzinfo=UTC),
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
        datetime(2026, 11, 1, 5, 45, tzinfo=UTC),  # 01:45 EDT; 01:00-01:45 EST do not fire again
        datetime(2026, 11, 1, 7, 0, tzinfo=UTC),  # 02:00 EST
        datetime(2026, 11, 1, 7, 15, tzinfo=UTC),
    ]
    # Asked from inside the second pass of the hour (01:10 EST), the next is still 02:00 EST.
    assert utc(rule.after(ms(2026, 11, 1, 6, 10))) == datetime(2026, 11, 1, 7, 0, tzinfo=UTC)


def test_berlin_spring_forward_and_fall_back() -> None:
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC). 2026-10-25: 03:00 CEST falls back to 02:00 CET.
    two = cron("0 2 * * *", BERLIN)
    assert [utc(t) for t in two.preview(ms(2026, 3, 28, 12), 2)] == [
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # the skipped 02:00: at 03:00 CEST
        datetime(2026, 3, 30, 0, 0, tzinfo=UTC),
    ]
    assert [utc(t) for t in two.preview(ms(2026, 10, 24, 12), 2)] == [
        datetime(2026, 10, 25, 0, 0, tzinfo=UTC),  # 02:00 CEST, the first; not 01:00 UTC (02:00 CET)
        datetime(2026, 10, 26, 1, 0, tzinfo=UTC),
    ]


def test_an_interval_is_elapsed_time_that_no_clock_change_moves() -> None:
    start = ms(2026, 3, 8, 5)
    rule = Rule(start_ms=start, zone=NY, every_ms=90 * 60_000)
    got = rule.preview(start - 1, 4)
    assert [b - a for a, b in itertools.pairwise(got)] == [90 * 60_000] * 3
    assert got[0] == start


def test_start_and_end_bound_the_occurrences() -> None:
    rule = Rule(start_ms=ms(2026, 5, 1, 12), zone="UTC", cron="0 * * * *", end_ms=ms(2026, 5, 1, 15))
    assert [utc(t).hour for t in rule.preview(0, 10)] == [12, 13, 14, 15]
    assert rule.after(ms(2026, 5, 1, 15)) is None


def test_on_time_and_slightly_late_occurrences_fire() -> None:
    rule = Rule(start_ms=0, every_ms=60_000)
    assert advance(rule, 60_000, 60_001, "skip", 1, None).next_ms == 120_000
    late = 120_000 + LATE_GRACE_MS - 1  # the worker was slow, not down
    assert advance(rule, 60_000, late, "skip", 1, None).next_ms == 120_000


def test_after_an_outage_skip_drops_the_missed_and_last_fires_the_last_once() -> None:
    rule = Rule(start_ms=0, every_ms=60_000)
    now = 10 * 60_000 + 30_000  # fired at 1 min, down until 10.5 min: 2..10 were missed
    skip = advance(rule, 60_000, now, "skip", 1, None)
    assert skip.next_ms == 11 * 60_000 and skip.skipped == 9 and not skip.late
    last = advance(rule, 60_000, now, "last", 1, None)
    assert last.next_ms == 10 * 60_000 and last.skipped == 8 and last.late
    # ... and after that one fires, the series goes on on time.
    assert advance(rule, 10 * 60_000, now + 5, "last", 2, None).next_ms == 11 * 60_000


def test_cron_outage_in_a_zone() -> None:
    rule = cron("0 9 * * *", BERLIN)
    fired = ms(2026, 1, 5, 8)  # Monday 09:00 CET
    now = ms(2026, 1, 9, 10)  # Friday 11:00 CET: Tue-Fri 09:00 missed
    assert utc(advance(rule, fired, now, "last", 1, None).next_ms or 0) == datetime(2026, 1, 9, 8, tzinfo=UTC)
    assert utc(advance(rule, fired, now, "skip", 1, None).next_ms or 0) == datetime(2026, 1, 10, 8, tzinfo=UTC)


def test_max_count_ends_the_series() -> None:
    rule = Rule(start_ms=0, every_ms=1000)
    assert advance(rule, 1000, 1001, "skip", 3, 3).next_ms is None
    assert advance(rule, 1000, 1001, "skip", 2, 3).next_ms == 2000


def test_bad_rules_are_refused_naming_the_field() -> None:
    for bad in ("* * * *", "0 0 * * * *", "61 * * * *", "0 0 31 2 *", 5):
        with pytest.raises(FieldError) as err:
            check_cron(bad)
        assert err.value.field == "cron"
    assert check_cron("0  9 * *  MON-FRI") == "0 9 * * MON-FRI"
    for zone in ("Mars/Olympus", "", "../etc/passwd", None):
        with pytest.raises(FieldError) as err:
            check_zone(zone)
        assert err.value.field == "timezone"
    with pytest.raises(FieldError):
        check_catch_up("all")


ZONES = sorted(available_timezones())
RULES = ["*/15 * * * *", "30 2 * * *", "0 1,2,3 * * *", "0 0 * * SUN", "45 23 L * *", "0 */5 * * *", "*/7 0-3 * * *"]


def _transition_near(zone: str, t_ms: int) -> int | None:
    """The first change of the zone's UTC offset in the 200 days from ``t_ms`` (to the second), or None."""
    tz = ZoneInfo(zone)
    offset = utc(t_ms).astimezone(tz).utcoffset()
    for day in range(1, 201):
        later = t_ms + day * 86_400_000
        if utc(later).astimezone(tz).utcoffset() != offset:
            low, high = (later - 86_400_000) // 1000, later // 1000
            while low < high:
                mid = (low + high) // 2
                if utc(mid * 1000).astimezone(tz).utcoffset() != offset:
                    high = mid
                else:
                    low = mid + 1
            return low * 1000
    return None


@st.composite
def _starts(draw: st.DrawFn, zone: str) -> int:
    """A start anywhere in 2024-2030, or within two days of one of the zone's clock changes."""
    t = draw(st.integers(min_value=ms(2024, 1, 1), max_value=ms(2030, 12, 1)))
    if draw(st.booleans()):
        change = _transition_near(zone, t)
        if change is not None:
            t = change + draw(st.integers(min_value=-2 * 86_400_000, max_value=2 * 86_400_000))
    return t


@settings(max_examples=300, deadline=None)
@given(data=st.data(), zone=st.sampled_from(ZONES), expr=st.sampled_from(RULES))
def test_occurrences_are_valid_increasing_and_agree_with_looking_back(
    data: st.DataObject, zone: str, expr: str
) -> None:
    start = data.draw(_starts(zone))
    rule = cron(expr, zone)
    tz = ZoneInfo(zone)
    got = rule.preview(start, 12)
    assert got and got[0] > start
    assert all(a < b for a, b in itertools.pairwise(got)), "duplicated or out of order"
    for t in got:
        assert t % 1000 == 0
        local = utc(t).astimezone(tz)
        wall = local.replace(tzinfo=None)
        if _matches(expr, wall):
            # A wall time the rule names, at its first instant: the same wall time an hour or more earlier is
            # not the same wall time (fall-back overlap: the first pass fires, the second does not).
            assert (wall.replace(tzinfo=tz, fold=0)).astimezone(UTC) == utc(t), "fired on the repeated pass"
        else:
            # Otherwise it is a skipped wall time fired at the transition: the second before had another offset.
            assert utc(t - 1000).astimezone(tz).utcoffset() != local.utcoffset(), f"{local} is not a rule's time"
    # Looking back from just before any occurrence finds the one before it.
    for before, after in itertools.pairwise(got):
        assert rule.at_or_before(after - 1) == before
        assert rule.at_or_before(after) == after
    # Every local wall time the rule matches in the window fires exactly once (fold=0), or at the transition.
    span = (got[-1] - got[0]) // 60_000
    if span < 5000:
        expected = set()
        for minute in range(span + 1):
            instant = got[0] + minute * 60_000
            nxt = rule.after(instant - 1)
            if nxt is not None and nxt <= got[-1]:
                expected.add(nxt)
        assert expected == set(got)


def _matches(expr: str, wall: datetime) -> bool:
    """Whether the rule names this wall time (cronsim's own answer: the first match from a second before it)."""
    return next(iter(CronSim(expr, wall - timedelta(seconds=1)))) == wall


def test_the_gap_instant_is_the_transition() -> None:
    rule = cron("30 2 8 3 *", NY, start=ms(2026, 1, 1))
    t = rule.after(ms(2026, 1, 1))
    assert t is not None
    local = utc(t).astimezone(ZoneInfo(NY))
    assert (local.hour, local.minute, local.utcoffset()) == (3, 0, timedelta(hours=-4))
    assert utc(t - 1000).astimezone(ZoneInfo(NY)).hour == 1  # one second earlier is still 01:59:59 EST


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from([NY, BERLIN, "UTC", "Australia/Lord_Howe"]),
    expr=st.sampled_from(RULES),
    fired_at=st.integers(min_value=ms(2025, 1, 1), max_value=ms(2029, 1, 1)),
    outage_ms=st.integers(min_value=0, max_value=3 * 86_400_000),
    catch_up=st.sampled_from(["skip", "last"]),
    end_after_ms=st.none() | st.integers(min_value=0, max_value=3 * 86_400_000),
)
def test_after_any_outage_nothing_fires_twice_and_only_the_policy_drops(
    zone: str, expr: str, fired_at: int, outage_ms: int, catch_up: str, end_after_ms: int | None
) -> None:
    fired = cron(expr, zone).after(fired_at)
    assert fired is not None
    end = None if end_after_ms is None else fired + end_after_ms
    rule = Rule(start_ms=0, zone=zone, cron=expr, end_ms=end)
    now = fired + outage_ms
    step = advance(rule, fired, now, catch_up, 1, None)
    on_time = rule.after(fired)
    if step.next_ms is None:  # the series is over: only when nothing is left before the end
        assert end is not None and (on_time is None or (catch_up == "skip" and rule.after(now) is None))
        return
    assert step.next_ms > fired, "nothing fires twice"
    assert end is None or step.next_ms <= end, "nothing fires after the end"
    if on_time is not None and on_time >= now - LATE_GRACE_MS:
        assert step.next_ms == on_time and step.skipped == 0  # nothing was missed: nothing is dropped
    elif catch_up == "last":
        assert step.next_ms == rule.at_or_before(now) and step.late  # the last missed one, once
        following = rule.after(step.next_ms)
        assert following is None or following > now  # ... and no other missed one
    else:
        assert step.next_ms == rule.after(now) and step.skipped >= 1  # the first one still to come


@pytest.mark.parametrize("expr", [None, "* * * * *"])
def test_an_outage_past_the_end_fires_nothing_after_it(expr: str | None) -> None:
    every = None if expr else 60_000
    rule = Rule(start_ms=0, zone=BERLIN, cron=expr, every_ms=every, end_ms=5 * 60_000)
    assert rule.at_or_before(60 * 60_000) == 5 * 60_000
    last = advance(rule, 60_000, 60 * 60_000, "last", 1, None)
    assert last.next_ms == 5 * 60_000 and last.late  # the last missed one is the last before the end
    assert advance(rule, 60_000, 60 * 60_000, "skip", 1, None).next_ms is None  # the series is over
