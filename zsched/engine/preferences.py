"""Scheduling on each recipient's own clock: ``deliver_at_local`` (09:00 where each recipient lives) and quiet
hours (a non-urgent notification due inside them waits until they end).

Both are decided when the notification is scheduled, from the zone and quiet hours in each recipient's contact
data: Lua knows no time zones, so the due time each recipient gets is computed here, and recipients that come
out at the same instant share one schedule call (one due entry). Changing a recipient's zone or quiet hours
later does not move what is already pending for them; it applies to what is scheduled afterwards (from
another process, within a second: a call skips the lookup in partitions where nobody has preferences, and
trusts that for ``PREFERENCES_CHECK_MS``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import FieldError
from ..models import ScheduleResult, ms_to_datetime
from . import localtime, validation
from .contacts import lookup
from .producer import ProducerOps
from .steps import Command, Op

UTC_ZONE = ZoneInfo("UTC")
PREFERENCES_CHECK_MS = 1000
"""How long a schedule call trusts its last look at whether a partition has recipients with preferences."""


class PreferenceOps(ProducerOps):
    """``schedule_for``: ``schedule`` with each recipient's zone and quiet hours applied."""

    def schedule_for(
        self,
        recipients: Iterable[object],
        title: object,
        message: object,
        *,
        at: datetime | None = None,
        delay: timedelta | float | None = None,
        deliver_at_local: str | None = None,
        local_date: date | None = None,
        priority: object = "normal",
        idempotency_key: object = None,
        **options: Any,
    ) -> Op[ScheduleResult]:
        """Like ``schedule``, on each recipient's clock: ``deliver_at_local="09:00"`` with ``local_date`` makes
        each due at 09:00 of that date in their zone (UTC without one), instead of ``at``/``delay``; and unless
        ``priority`` is urgent, one that would be due inside its recipient's quiet hours is due when they end.
        Recipients due at the same instant share one call; with several, ``batch_ids`` names each call's batch."""
        people = validation.recipients(recipients)
        now_ms = self.rough_now_ms()
        if deliver_at_local is None:
            if local_date is not None:
                raise FieldError("local_date goes with deliver_at_local; give both, or neither", "local_date")
            # Urgent ones are not held back by quiet hours, and where nobody has preferences there is nothing to
            # look up: either way the call is a plain schedule (urgent first, so it costs no lookup at all).
            if priority == "urgent" or not (yield from self._any_preferences(people, now_ms)):
                return (
                    yield from self.schedule(
                        people,
                        title,
                        message,
                        at=at,
                        delay=delay,
                        priority=priority,
                        idempotency_key=idempotency_key,
                        **options,
                    )
                )
        wall = None
        if deliver_at_local is not None:
            if at is not None or delay is not None:
                raise FieldError("deliver_at_local replaces at and delay; give only one of them", "deliver_at_local")
            if not isinstance(local_date, date) or isinstance(local_date, datetime):
                raise FieldError(
                    f"deliver_at_local needs local_date, the date (e.g. date(2026, 12, 1)); got "
                    f"{validation.type_name(local_date)}",
                    "local_date",
                )
            wall = localtime.clock(deliver_at_local, "deliver_at_local")
            base = None
        else:
            at_ms, delay_ms = validation.due(at, delay, now_ms)
            base = at_ms if at_ms is not None else now_ms + delay_ms
        found = yield from lookup(self.keys, people)
        groups: dict[int | None, list[str]] = {}  # due instant (None: as asked) -> its recipients
        for person in people:
            contact = found[person]
            tz = ZoneInfo(contact.zone) if contact.zone else UTC_ZONE
            when = base if wall is None else localtime.instant_ms(tz, local_date, wall)  # type: ignore[arg-type]
            assert when is not None
            if priority != "urgent" and contact.quiet_hours:
                when = localtime.after_quiet_ms(tz, contact.quiet_hours, when)
            if wall is not None and when <= now_ms:
                raise FieldError(
                    f"deliver_at_local {deliver_at_local} on {local_date} has already passed for {person!r} (zone "
                    f"{tz.key}); pick a later date",
                    "local_date",
                )
            groups.setdefault(None if when == base else when, []).append(person)
        if list(groups) == [None]:  # nobody's clock changes anything: the call as asked
            return (
                yield from self.schedule(
                    people,
                    title,
                    message,
                    at=at,
                    delay=delay,
                    priority=priority,
                    idempotency_key=idempotency_key,
                    **options,
                )
            )
        results: list[ScheduleResult] = []
        ids: dict[str, int] = {}
        for when, group in sorted(groups.items(), key=lambda item: item[0] or 0):
            key = idempotency_key if idempotency_key is None or when is None else f"{idempotency_key}@{when}"
            timing: dict[str, Any] = {"at": at, "delay": delay} if when is None else {"at": ms_to_datetime(when)}
            result = yield from self.schedule(
                group, title, message, priority=priority, idempotency_key=key, **timing, **options
            )
            results.append(result)
            ids.update(zip(group, result.notification_ids, strict=True))
        first = min(results, key=lambda r: r.scheduled_at)
        return ScheduleResult(
            notification_ids=[ids[p] for p in people],
            count=len(people),
            scheduled_at=first.scheduled_at,
            replayed=all(r.replayed for r in results),
            batch_id=results[0].batch_id,
            batch_ids=[r.batch_id for r in results],
        )

    def _any_preferences(self, people: list[str], now_ms: int) -> Op[bool]:
        """Whether any partition ``people`` live in has a recipient with a zone or quiet hours; asked of the
        server at most once a second per partition (``PREFERENCES_CHECK_MS``), so a call to recipients with none
        costs no lookup, and a preference set elsewhere applies within that second."""
        seen = self.preferences_seen
        if len(self.keys.partitions) == 1:  # the usual case, answered from the last look without building sets
            last = seen.get(0)
            if last is not None and now_ms - last[0] < PREFERENCES_CHECK_MS:
                return last[1]
        wanted = {self.keys.for_recipient(p).index for p in people} if len(self.keys.partitions) > 1 else {0}
        stale = sorted(i for i in wanted if i not in seen or now_ms - seen[i][0] >= PREFERENCES_CHECK_MS)
        if stale:
            counts = yield [Command(("SCARD", self.keys.partitions[i].with_preferences)) for i in stale]
            for i, count in zip(stale, counts, strict=True):
                seen[i] = (now_ms, int(count) > 0)
        return any(seen[i][1] for i in wanted)
