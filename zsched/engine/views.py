"""Read views: one notification, a recipient's list, stats, and the dead letters. Read-only.

Each is a generator of Redis steps (see ``steps``); nothing here does I/O of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from ..errors import FieldError, NotFoundError
from ..models import STATUSES, Notification, Page, Stats, ms_to_datetime
from . import records, validation
from .base import CoreBase
from .keys import Partition, parse_recipient_member, recipient_bounds
from .steps import Command, Op, Step


class ReadViews(CoreBase):
    """Operations that only read."""

    def status(self, notification_id: int | str) -> Op[Notification]:
        """The notification as it is now; NotFoundError if unknown or purged."""
        notification_id = validation.notification_id(notification_id)
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
    ) -> Op[Page]:
        """A recipient's notifications, newest first, optionally of one status; at most ``limit``."""
        person = validation.recipient(recipient)
        if status is not None and status not in STATUSES:
            raise FieldError(f"status must be one of {', '.join(STATUSES)}; got {status!r}", "status")
        if not 1 <= limit <= 1000:
            raise FieldError(f"limit must be between 1 and 1000; got {limit}", "limit")
        p = self.keys.for_recipient(person)
        upper, lower = recipient_bounds(person, cursor)
        items: list[Notification] = []
        batch = limit if status is None else max(100, limit * 2)
        scanned, more = 0, True
        while len(items) < limit and more and scanned < 20 * batch:
            (members,) = yield [Command(("ZREVRANGEBYLEX", p.by_recipient, upper, lower, "LIMIT", 0, batch))]
            more = len(members) == batch
            scanned += len(members)
            if not members:
                break
            ids = [parse_recipient_member(m)[1] for m in members]
            states, payloads = yield [Command(("HMGET", p.state, *ids)), Command(("HMGET", p.notifications, *ids))]
            for notification_id, state, payload in zip(ids, states, payloads, strict=True):
                upper = recipient_bounds(person, notification_id)[0]
                if state is None or payload is None:
                    continue
                n = records.notification(notification_id, state, payload)
                if status is None or n.scheduled_status == status:
                    items.append(n)
                    if len(items) == limit:
                        break
        next_cursor = items[-1].id if items and (more or len(items) == limit) else None
        return Page(items=items, next_cursor=next_cursor)

    def stats(self, partitions: Sequence[Partition] | None = None) -> Op[Stats]:
        """Counts per status and lifetime totals over every partition (or just ``partitions``), and the
        earliest due lag."""
        chosen = self.keys.partitions if partitions is None else tuple(partitions)
        steps: list[Step] = [Command(("TIME",))]
        for p in chosen:
            steps += PartitionStats.steps(p)
        time_reply, *rest = yield steps
        seconds, micros = time_reply
        now_ms = self.clock() if self.clock else int(seconds) * 1000 + int(micros) // 1000
        counts = dict.fromkeys(STATUSES, 0)
        totals: dict[str, int] = {}
        earliest: int | None = None
        replies = iter(rest)
        for _ in chosen:
            part = PartitionStats.read(replies)
            for name, count in part.counts.items():
                counts[name] += count
            for field, value in part.totals.items():
                totals[field] = totals.get(field, 0) + value
            if part.earliest_due_ms is not None:
                earliest = part.earliest_due_ms if earliest is None else min(earliest, part.earliest_due_ms)
        return Stats(
            counts=counts,
            totals=totals,
            next_due_at=None if earliest is None else ms_to_datetime(earliest),
            oldest_overdue_ms=max(0, now_ms - earliest) if earliest is not None else 0,
            server_time=ms_to_datetime(now_ms),
        )


class PartitionStats(msgspec.Struct, frozen=True):
    """One partition's counts per status, lifetime totals and earliest due time: its steps and their reading."""

    counts: dict[str, int]
    totals: dict[str, int]
    earliest_due_ms: int | None

    @staticmethod
    def steps(p: Partition) -> list[Step]:
        """The commands that read one partition's figures; ``read`` takes their replies in this order."""
        sets = {
            "pending": p.due,
            "processing": p.processing,
            "sent": p.sent,
            "cancelled": p.cancelled,
            "failed": p.failed,
        }
        return [
            *(Command(("ZCARD", sets[status])) for status in STATUSES),
            Command(("ZRANGE", p.due, 0, 0, "WITHSCORES")),
            Command(("HGETALL", p.counters)),
        ]

    @classmethod
    def read(cls, replies: Iterator[Any]) -> PartitionStats:
        """Consume the replies to ``steps`` (in order) from ``replies``."""
        counts = {status: int(next(replies)) for status in STATUSES}
        first, counters = next(replies), next(replies)
        return cls(
            counts=counts,
            totals={records.text(field): int(value) for field, value in counters.items()},
            earliest_due_ms=int(float(first[0][1])) if first else None,
        )


def list_dead(core: CoreBase, limit: int = 100) -> Op[list[Notification]]:
    """Up to ``limit`` dead letters per partition, oldest failure first, as notifications."""
    if limit < 1:
        raise FieldError(f"limit must be at least 1; got {limit}", "limit")
    steps: list[Step] = [Command(("ZRANGE", p.failed, 0, limit - 1)) for p in core.keys.partitions]
    id_lists = yield steps
    items: list[Notification] = []
    for p, raw_ids in zip(core.keys.partitions, id_lists, strict=True):
        ids = [int(i) for i in raw_ids]
        if not ids:
            continue
        states, payloads = yield [Command(("HMGET", p.state, *ids)), Command(("HMGET", p.notifications, *ids))]
        items += [records.notification(i, s, b) for i, s, b in zip(ids, states, payloads, strict=True) if s and b]
    return sorted(items, key=lambda n: (n.failed_at is None, n.failed_at, n.id))
