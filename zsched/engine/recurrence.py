"""When a recurring schedule's occurrences fall: pure time arithmetic over a cron rule or an interval, no I/O.

A cron rule (5 fields, parsed by ``cronsim``) is read on the wall clock of the schedule's IANA zone, and every
wall time is turned into one instant by one policy, the same for every zone:

- **spring-forward gap**: a wall time the clocks skip fires once, at the first valid instant after it (the moment
  of the transition: 02:30 on the day New York skips 02:00-03:00 fires at 03:00 EDT). Several skipped wall
  times collapse into that one firing, and a rule that also matches 03:00 fires there once, not twice.
- **fall-back overlap**: a wall time the clocks repeat fires once, at its first instant (``fold=0``); the
  repeated hour does not fire again, so ``30 1 * * *`` fires once on that day, and ``*/15 * * * *`` fires at
  01:00, 01:15, 01:30, 01:45 (summer time) and next at 02:00 (winter time).

An interval is elapsed time from the start (``start + k * every``), which no clock change moves.

Missed occurrences (an outage: nothing advanced the schedule while its times passed) follow the schedule's
``catch_up``: ``skip`` (the default) drops them and goes on with the next future time; ``last`` fires the most
recent missed one once, late, and then goes on. Either way an occurrence less than ``LATE_GRACE_MS`` late is not
missed: a worker that was merely busy or restarting still fires it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from cronsim import CronSim, CronSimError

from ..errors import FieldError
from .validation import MAX_AT_MS

CatchUp = Literal["skip", "last"]
CATCH_UPS: tuple[str, ...] = ("skip", "last")
LATE_GRACE_MS = 10_000
"""An occurrence at most this late when its schedule is advanced still fires; one later than that was missed."""
MIN_EVERY_MS = 1000
"""The shortest interval: one occurrence a second."""
MAX_EVERY_MS = 366 * 24 * 3600 * 1000
"""The longest interval: a year (a leap one); longer rules are better said with cron."""
MAX_PREVIEW = 1000
_OVERLAP_MS = 3 * 3600 * 1000
"""Longer than any clock change rewinds the wall clock: walking back this far passes every overlap."""
_SEARCH_LIMIT = 100_000
"""Wall times looked at before a cron rule is declared to have no occurrence (cronsim gives up after 50 years)."""


class Rule(msgspec.Struct, frozen=True, omit_defaults=True):
    """When a recurring schedule fires: ``cron`` on the wall clock of ``zone``, or every ``every_ms``; no earlier
    than ``start_ms``, no later than ``end_ms`` (None: no end)."""

    start_ms: int
    zone: str = "UTC"
    cron: str | None = None
    every_ms: int | None = None
    end_ms: int | None = None

    def after(self, t_ms: int) -> int | None:
        """The first occurrence strictly after ``t_ms`` (epoch ms), or None when none is left before the end."""
        t_ms = max(t_ms, self.start_ms - 1)
        found = self._interval_after(t_ms) if self.every_ms else self._cron_after(t_ms)
        if found is None or (self.end_ms is not None and found > self.end_ms) or found > MAX_AT_MS:
            return None
        return found

    def at_or_before(self, t_ms: int) -> int | None:
        """The last occurrence at or before ``t_ms`` (and not before the start, nor after the end), or None."""
        if self.end_ms is not None:
            t_ms = min(t_ms, self.end_ms)
        if t_ms < self.start_ms:
            return None
        if self.every_ms:
            return self.start_ms + (t_ms - self.start_ms) // self.every_ms * self.every_ms
        # Walk back on the wall clock to a candidate, then forward: in an overlap, wall times read backwards
        # map to instants out of order, and the forward walk is the one the policy defines.
        zone = ZoneInfo(self.zone)
        wall = datetime.fromtimestamp(t_ms / 1000, zone).replace(tzinfo=None) + timedelta(seconds=1)
        found: int | None = None
        try:
            for step, naive in enumerate(CronSim(self.cron or "", wall, reverse=True)):
                ms = _instant(naive, zone)
                if ms < self.start_ms or step > _SEARCH_LIMIT:
                    break
                if ms <= t_ms - _OVERLAP_MS:  # before any overlap that could hide a later one
                    found = ms
                    break
        except StopIteration:
            pass
        t = found if found is not None else self.start_ms - 1
        last = found
        while True:
            nxt = self.after(t)
            if nxt is None or nxt > t_ms:
                return last
            last, t = nxt, nxt

    def first(self, now_ms: int) -> int | None:
        """The first occurrence after ``now_ms`` (and at or after the start)."""
        return self.after(now_ms)

    def preview(self, after_ms: int, count: int) -> list[int]:
        """The next ``count`` occurrences strictly after ``after_ms``."""
        out: list[int] = []
        t = after_ms
        while len(out) < count:
            nxt = self.after(t)
            if nxt is None:
                break
            out.append(nxt)
            t = nxt
        return out

    def _interval_after(self, t_ms: int) -> int:
        every = self.every_ms or 0
        if t_ms < self.start_ms:
            return self.start_ms
        return self.start_ms + ((t_ms - self.start_ms) // every + 1) * every

    def _cron_after(self, t_ms: int) -> int | None:
        zone = ZoneInfo(self.zone)
        wall = datetime.fromtimestamp(t_ms / 1000, zone).replace(tzinfo=None)
        try:
            for step, naive in enumerate(CronSim(self.cron or "", wall)):
                ms = _instant(naive, zone)
                if ms > t_ms:
                    return ms
                if step > _SEARCH_LIMIT:
                    return None
        except StopIteration:  # cronsim found no match in 50 years
            return None
        return None


class Step(msgspec.Struct, frozen=True):
    """What advancing a schedule past its occurrence ``fired_ms`` does: create the occurrence at ``next_ms``
    (None: the series is over), having skipped ``skipped`` missed ones; ``late`` when ``next_ms`` has already
    passed (the one missed occurrence ``catch_up = last`` fires)."""

    next_ms: int | None
    skipped: int = 0
    late: bool = False


def advance(rule: Rule, fired_ms: int, now_ms: int, catch_up: str, count: int, max_count: int | None) -> Step:
    """The step after occurrence ``fired_ms`` at ``now_ms``, when ``count`` occurrences were created so far."""
    if max_count is not None and count >= max_count:
        return Step(None)
    nxt = rule.after(fired_ms)
    if nxt is None or nxt >= now_ms - LATE_GRACE_MS:
        return Step(nxt)
    last = rule.at_or_before(now_ms) or nxt
    skipped = _count_between(rule, fired_ms, last)
    if catch_up == "last":
        return Step(last, skipped - 1, late=True)
    upcoming = rule.after(now_ms)
    return Step(upcoming, skipped)


def _count_between(rule: Rule, low_ms: int, high_ms: int) -> int:
    """How many occurrences fall in (low, high]; exact for intervals, counted up to 1,000 for cron."""
    if rule.every_ms:
        return (high_ms - low_ms) // rule.every_ms
    n, t = 0, low_ms
    while n < 1000:
        nxt = rule.after(t)
        if nxt is None or nxt > high_ms:
            break
        n, t = n + 1, nxt
    return n


def _instant(wall: datetime, zone: ZoneInfo) -> int:
    """Epoch ms of a wall time in ``zone`` under the DST policy: its first instant when repeated (fold=0), the
    transition when skipped."""
    first = wall.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
        return round(first.timestamp() * 1000)
    # Skipped: fold=1 reads it with the offset after the transition and fold=0 with the one before, so the
    # transition lies between those two instants; find the first second whose offset is the new one.
    after_offset = wall.replace(tzinfo=zone, fold=1).utcoffset()
    low = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    high = int(first.timestamp())
    low, high = min(low, high), max(low, high)
    while low < high:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == after_offset:
            high = mid
        else:
            low = mid + 1
    return low * 1000


def check_cron(expr: object) -> str:
    """A 5-field cron expression (minute hour day-of-month month day-of-week), as given; FieldError otherwise."""
    if not isinstance(expr, str) or len(expr.split()) != 5:
        raise FieldError(
            "cron must have 5 fields (minute hour day-of-month month day-of-week), e.g. '0 9 * * MON-FRI'; "
            f"got {str(expr)[:80]!r}",
            "cron",
        )
    text = " ".join(expr.split())
    try:
        CronSim(text, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise FieldError(f"cron {text!r} is not a valid expression: {exc}", "cron") from None
    return text


def check_zone(name: object) -> str:
    """An IANA time zone name (``Europe/Berlin``); FieldError naming the field otherwise."""
    if not isinstance(name, str) or not name or len(name) > 64 or name.startswith("/") or ".." in name:
        raise FieldError(
            f"timezone must be an IANA zone name such as 'Europe/Berlin'; got {str(name)[:80]!r}", "timezone"
        )
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldError(
            f"timezone {name!r} is not an IANA time zone; use a name such as 'America/New_York' or 'UTC'", "timezone"
        ) from None
    return name


def check_every_ms(every: object) -> int:
    """An interval in whole ms from a timedelta or seconds, from 1 s up to ten years."""
    seconds = every.total_seconds() if isinstance(every, timedelta) else every
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds != seconds:
        raise FieldError(f"every must be a number of seconds or a timedelta; got {every!r}", "every")
    ms = round(seconds * 1000)
    if not MIN_EVERY_MS <= ms <= MAX_EVERY_MS:
        raise FieldError(f"every must be from 1 s to 366 days; got {seconds} s", "every")
    return ms


def check_catch_up(value: object) -> CatchUp:
    """``skip`` or ``last``."""
    if value not in CATCH_UPS:
        raise FieldError(f"catch_up must be one of {', '.join(CATCH_UPS)}; got {value!r}", "catch_up")
    return value  # type: ignore[return-value]
