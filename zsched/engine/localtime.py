"""A recipient's own clock: an IANA zone, quiet hours, and the instants a local time of day names there.

Kept small on purpose: recurrence (``recurrence``) does the calendar arithmetic of schedules; this only turns
"09:00 on a date, in a zone" into an instant, and says when a recipient's quiet hours end.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import FieldError

ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"
"""The shape of an IANA zone name (``America/Argentina/Buenos_Aires``, ``Etc/GMT+3``); the zone database decides."""
CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):([0-5][0-9])$"
"""A time of day, ``HH:MM`` on a 24-hour clock."""
_CLOCK = re.compile(CLOCK_PATTERN)
_ZONE = re.compile(ZONE_PATTERN)
QUIET_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$"
"""Quiet hours as ``HH:MM-HH:MM`` in the recipient's zone; the end may be earlier than the start (overnight)."""


def clock(value: object, field: str) -> time:
    """``"09:00"`` as a time of day; FieldError naming ``field`` otherwise."""
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if not match:
        raise FieldError(
            f"{field} must be a time of day as HH:MM (24-hour, e.g. 09:00); got {str(value)[:20]!r}", field
        )
    return time(int(match[1]), int(match[2]))


def zone(value: object) -> str:
    """An IANA time zone name (``Europe/Lisbon``), checked against the zone database."""
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not _ZONE.match(value):
        raise FieldError(f"zone must be an IANA time zone name such as Europe/Lisbon; got {str(value)[:64]!r}", "zone")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldError(f"zone must be an IANA time zone name such as Europe/Lisbon; got {value!r}", "zone") from None
    return value


def quiet_hours(value: object) -> str:
    """Quiet hours as ``HH:MM-HH:MM`` (``22:00-07:00`` spans midnight); start and end must differ."""
    text = value if isinstance(value, str) else ""
    start, _, end = text.partition("-")
    if not (_CLOCK.match(start) and _CLOCK.match(end)) or start == end:
        raise FieldError(
            "quiet_hours must be HH:MM-HH:MM in the recipient's zone, start and end apart (e.g. 22:00-07:00); "
            f"got {str(value)[:20]!r}",
            "quiet_hours",
        )
    return text


def instant_ms(tz: ZoneInfo, day: date, at: time) -> int:
    """Epoch ms of ``at`` on ``day`` in ``tz``. A time the clocks skip (spring forward) is read with the offset
    before the change, so it lands that much later (02:30 -> 03:30); a repeated one (fall back) is the first."""
    local = datetime.combine(day, at, tzinfo=tz)
    return int(local.astimezone(UTC).timestamp() * 1000)


def after_quiet_ms(tz: ZoneInfo, quiet: str, when_ms: int) -> int:
    """``when_ms``, or, when it falls inside the quiet hours (in ``tz``), the instant they end."""
    start, end = (clock(part, "quiet_hours") for part in quiet.split("-"))
    local = datetime.fromtimestamp(when_ms / 1000, tz)
    now = local.time().replace(tzinfo=None)
    inside = start <= now < end if start < end else (now >= start or now < end)
    if not inside:
        return when_ms
    day = local.date() if now < end else local.date() + timedelta(days=1)
    return max(when_ms, instant_ms(tz, day, end))
