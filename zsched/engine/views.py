"""Read views: one notification, a recipient's list, stats, and the dead letters. Read-only.

Each is a generator of Redis steps (see ``steps``); nothing here does I/O of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import FieldError, NotFoundError
from ..models import STATUSES, Notification, Page, Stats, ms_to_datetime, payload_decoder, state_decoder
from . import records, validation
from .base import CoreBase
from .keys import Partition
from .steps import Command, Op, Step


class ReadViews(CoreBase):
    """Operations that only read."""

    def status(self, notification_id: int) -> Op:
        """The notification as it is now; NotFoundError if unknown or purged."""
        p = self.keys.for_id(notification_id)
        state, payload = yield [
            Command(("HGET", p.state, notification_id)),
            Command(("HGET", p.notifications, notification_id)),
        ]
        if state is None or payload is None:
            raise NotFoundError(notification_id)
        return records.notification(notification_id, state, payload)

    def list_for(
        self, recipient: object, *, status: str | None = None, limit: int = 50, cursor: int | None = None
    ) -> Op:
        """A recipient's notifications, newest first, optionally of one status; at most ``limit``."""
        person = validation.recipient(recipient)
        if status is not None and status not in STATUSES:
            raise FieldError(f"status must be one of {', '.join(STATUSES)}; got {status!r}", "status")
        if not 1 <= limit <= 1000:
            raise FieldError(f"limit must be between 1 and 1000; got {limit}", "limit")
        p = self.keys.for_recipient(person)
        upper = f"({person} {cursor:016d}" if cursor is not None else f"({person}!"
        items: list[Notification] = []
        batch = limit if status is None else max(100, limit * 2)
        scanned, more = 0, True
        while len(items) < limit and more and scanned < 20 * batch:
            (members,) = yield [Command(("ZREVRANGEBYLEX", p.by_recipient, upper, f"({person} ", "LIMIT", 0, batch))]
            more = len(members) == batch
            scanned += len(members)
            if not members:
                break
            ids = [int(records.text(m).rsplit(" ", 1)[1]) for m in members]
            states, payloads = yield [Command(("HMGET", p.state, *ids)), Command(("HMGET", p.notifications, *ids))]
            for notification_id, state, payload in zip(ids, states, payloads, strict=True):
                upper = f"({person} {notification_id:016d}"
                if state is None or payload is None:
                    continue
                n = records.notification(notification_id, state, payload)
                if status is None or n.scheduled_status == status:
                    items.append(n)
                    if len(items) == limit:
                        break
        next_cursor = items[-1].id if items and (more or len(items) == limit) else None
        return Page(items=items, next_cursor=next_cursor)

    def stats(self, partitions: Sequence[Partition] | None = None) -> Op:
        """Counts per status and lifetime totals over every partition (or just ``partitions``), and the
        earliest due lag."""
        chosen = self.keys.partitions if partitions is None else tuple(partitions)
        steps: list[Step] = [Command(("TIME",))]
        for p in chosen:
            steps += [
                Command(("ZCARD", p.due)),
                Command(("ZCARD", p.processing)),
                Command(("ZCARD", p.sent)),
                Command(("ZCARD", p.cancelled)),
                Command(("ZCARD", p.failed)),
                Command(("ZRANGE", p.due, 0, 0, "WITHSCORES")),
                Command(("HGETALL", p.counters)),
            ]
        replies = yield steps
        seconds, micros = replies[0]
        now_ms = self.clock() if self.clock else int(seconds) * 1000 + int(micros) // 1000
        counts = dict.fromkeys(STATUSES, 0)
        totals: dict[str, int] = {}
        earliest: int | None = None
        for i in range(len(chosen)):
            *cards, first, counters = replies[1 + 7 * i : 8 + 7 * i]
            for name, card in zip(STATUSES, cards, strict=True):
                counts[name] += int(card)
            for field, value in counters.items():
                totals[records.text(field)] = totals.get(records.text(field), 0) + int(value)
            if first:
                score = int(float(first[0][1]))
                earliest = score if earliest is None else min(earliest, score)
        return Stats(
            counts=counts,
            totals=totals,
            next_due_at=None if earliest is None else ms_to_datetime(earliest),
            oldest_overdue_ms=max(0, now_ms - earliest) if earliest is not None else 0,
            server_time=ms_to_datetime(now_ms),
        )


def list_dead(core: CoreBase, limit: int = 100) -> Op:
    """Up to ``limit`` dead letters per partition, oldest failure first, as notifications."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1; got {limit}")
    steps: list[Step] = [Command(("ZRANGE", p.failed, 0, limit - 1)) for p in core.keys.partitions]
    id_lists = yield steps
    found: list[tuple[int, bytes | str, bytes | str]] = []
    for p, raw_ids in zip(core.keys.partitions, id_lists, strict=True):
        ids = [int(i) for i in raw_ids]
        if not ids:
            continue
        states, payloads = yield [Command(("HMGET", p.state, *ids)), Command(("HMGET", p.notifications, *ids))]
        found += [(i, s, b) for i, s, b in zip(ids, states, payloads, strict=True) if s is not None and b]
    items = [Notification.from_stored(i, state_decoder.decode(s), payload_decoder.decode(b)) for i, s, b in found]
    return sorted(items, key=lambda n: (n.failed_at is None, n.failed_at, n.id))
