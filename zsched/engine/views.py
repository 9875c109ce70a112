"""Read views: one notification, a recipient's list, stats, and the dead letters. Read-only.

Each is a generator of Redis steps (see ``steps``); nothing here does I/O of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from ..errors import FieldError, NotFoundError
from ..models import STATUSES, Notification, Page, Pauses, Stats, ms_to_datetime
from . import records, validation
from .base import CoreBase
from .keys import CLAIM_ORDER, Partition, parse_recipient_member, recipient_bounds
from .layout import adopt_layout
from .pauses import merge_pauses, pause_steps, read_pauses
from .replies import ReadReply
from .steps import Command, Op, Script, Step


class ReadViews(CoreBase):
    """Operations that only read."""

    def status(self, notification_id: int | str) -> Op[Notification]:
        """The notification as it is now; NotFoundError if unknown or purged."""
        notification_id = validation.notification_id(notification_id)
        p = self.keys.for_id(notification_id)
        (raw,) = yield [read_records(p, p.count, [notification_id])]
        ((state, payload),) = ReadReply.read(raw).records
        if state is None or payload is None:
            again = yield from self.relocated(notification_id)
            if again is None:
                raise NotFoundError(notification_id)
            return (yield from self.status(again))
        return records.notification(notification_id, state, payload)

    def relocated(self, notification_id: int) -> Op[int | None]:
        """After ``notification_id`` was not found: the id to look for again, or None (it is not there). A reshard
        (see ``engine.reshard``) may have moved it (the id it was re-issued under), or opened a generation this
        process has not seen yet (the same id, routed by the layout read now). One round trip, on misses only."""
        p = self.keys.for_id(notification_id)
        moved_to, fields = yield [Command(("HGET", p.forward, notification_id)), Command(("HGETALL", self.keys.layout))]
        changed = adopt_layout(self, fields)
        if moved_to is not None:
            return int(moved_to)
        return notification_id if changed else None

    def list_for(
        self, recipient: object, *, status: str | None = None, limit: int = 50, cursor: int | str | None = None
    ) -> Op[Page]:
        """A recipient's notifications, newest first, optionally of one status; at most ``limit``."""
        return (yield from self.list(recipient=recipient, status=status, limit=limit, cursor=cursor))

    def list(
        self,
        *,
        recipient: object = None,
        created_by: object = None,
        status: str | None = None,
        limit: int = 50,
        cursor: int | str | None = None,
    ) -> Op[Page]:
        """Notifications newest first (by id) with ids below ``cursor``: a recipient's, a creator's, or all of
        them when neither is given; optionally of one status; at most ``limit``.

        A page may come back short, even empty, with a ``next_cursor`` when the scan budget ran out before
        ``limit`` matches were found; ``next_cursor`` is None only when nothing more matches.
        """
        person = None if recipient is None else validation.recipient(recipient)
        creator = None if created_by is None else validation.user_id(created_by, "created_by")
        if status is not None and status not in STATUSES:
            raise FieldError(f"status must be one of {', '.join(STATUSES)}; got {status!r}", "status")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise FieldError(f"limit must be between 1 and 1000; got {limit!r}", "limit")
        before = None if cursor is None else validation.notification_id(cursor, "cursor")
        # A recipient's notifications sit in one partition; a creator's, and everything, in every partition. After
        # a reshard, the older generations' partitions are read too: what was delivered before it stayed there
        # (what was pending moved, under new ids), and their ids are all below the newer generation's.
        sources: list[_Source]
        generations = self.keys.generations
        everywhere = [p for g in generations for p in g.partitions]
        if person is not None:
            homes = [g.for_recipient(person) for g in generations]
            sources = [_Source(home, before, index=home.by_recipient, name=person) for home in homes]
        elif creator is not None:
            sources = [_Source(p, before, index=p.by_creator, name=creator) for p in everywhere]
        else:
            sequences = yield [Command(("GET", p.sequence)) for p in everywhere]
            floors = [g.id_base for g in generations for _ in g.partitions]
            sources = [
                _Source(p, before, sequence=int(seq or 0), partitions=p.count, floor=floor)
                for p, seq, floor in zip(everywhere, sequences, floors, strict=True)
            ]
        filtered = status is not None or (person is not None and creator is not None)
        batch = min(1000, max(100, 2 * limit)) if filtered else limit
        budget = 20 * batch

        found: dict[int, Notification] = {}
        items: list[Notification] = []
        scanned = 0
        while True:
            active = [s for s in sources if not s.done]
            if not active or scanned >= budget:
                break
            indexed = [s for s in active if s.index is not None]
            members = (yield [s.fetch(batch) for s in indexed]) if indexed else []
            for s, got in zip(indexed, members, strict=True):
                s.take([parse_recipient_member(m)[1] for m in got], batch)
            for s in active:
                if s.index is None:
                    s.take(s.count_down(batch), batch)
            reading = [s for s in active if s.ids]
            replies = (yield [read_records(s.partition, s.partition.count, s.ids) for s in reading]) if reading else []
            for s, raw in zip(reading, replies, strict=True):
                scanned += len(s.ids)
                for i, (state, payload) in zip(s.ids, ReadReply.read(raw).records, strict=True):
                    if state is not None and payload is not None:
                        note = records.notification(i, state, payload)
                        if (
                            (status is None or note.scheduled_status == status)
                            and (creator is None or note.created_by == creator)
                            and (person is None or note.recipient == person)
                        ):
                            found[i] = note
            # Everything at or above the highest position a live source reached is known in every source.
            floor = max((s.position for s in sources if not s.done and s.position is not None), default=-1)
            for i in sorted((i for i in found if i >= floor), reverse=True):
                items.append(found.pop(i))
                if len(items) == limit:
                    break
            if len(items) == limit:
                break
        if len(items) == limit:
            more = bool(found) or any(not s.done for s in sources)
            return Page(items=items, next_cursor=items[-1].id if more else None)
        live = [s.position for s in sources if not s.done and s.position is not None]
        return Page(items=items, next_cursor=max(live) if live else None)

    def stats(self, partitions: Sequence[Partition] | None = None) -> Op[Stats]:
        """Counts per status and lifetime totals over every partition (or just ``partitions``), and the
        earliest due lag. Every partition includes those of generations a reshard left (their history, and
        what is still to move); the pauses are the current generation's."""
        everywhere = tuple(p for g in self.keys.generations for p in g.partitions)
        chosen = everywhere if partitions is None else tuple(partitions)
        current = set(self.keys.partitions)
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
        pauses: list[Pauses] = []
        for p in chosen:
            part = PartitionStats.read(replies)
            if p in current:  # an old partition keeps the pauses it had when sealed; resume no longer reaches it
                pauses.append(part.pauses)
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
            paused=merge_pauses(pauses),
        )


class PartitionStats(msgspec.Struct, frozen=True):
    """One partition's counts per status, lifetime totals and earliest due time: its steps and their reading."""

    counts: dict[str, int]
    totals: dict[str, int]
    earliest_due_ms: int | None
    pauses: Pauses

    @staticmethod
    def steps(p: Partition) -> list[Step]:
        """The commands that read one partition's figures; ``read`` takes their replies in this order."""
        # Pending is the sum of the due sets (one per priority), where a many-recipient call counts once for
        # the recipients still pending in it; its earliest the least of their heads.
        sets = {
            "processing": p.processing,
            "sent": p.sent,
            "cancelled": p.cancelled,
            "failed": p.failed,
            "expired": p.expired,
            "collapsed": p.collapsed,
            "throttled": p.throttled,
            "skipped": p.skipped,
        }
        return [
            *(Command(("ZCARD", due)) for due in p.due_sets),
            *(Command(("ZCARD", sets[status])) for status in STATUSES if status != "pending"),
            *(Command(("ZRANGE", due, 0, 0, "WITHSCORES")) for due in p.due_sets),
            Command(("HGETALL", p.counters)),
            Command(("ZCARD", p.call_starts)),
            Command(("GET", p.call_pending)),
            *pause_steps(p),
        ]

    @classmethod
    def read(cls, replies: Iterator[Any]) -> PartitionStats:
        """Consume the replies to ``steps`` (in order) from ``replies``."""
        due_entries = sum(int(next(replies)) for _ in CLAIM_ORDER)
        counts = {status: 0 if status == "pending" else int(next(replies)) for status in STATUSES}
        heads = [int(float(first[0][1])) for first in (next(replies) for _ in CLAIM_ORDER) if first]
        counters = next(replies)
        calls, in_calls = int(next(replies)), int(next(replies) or 0)
        pauses = read_pauses(replies)
        # a pending call is one due entry for all its own; a parked one (its type paused) is pending too
        counts["pending"] = due_entries + pauses.parked - calls + in_calls
        return cls(
            counts=counts,
            totals={records.text(field): int(value) for field, value in counters.items()},
            earliest_due_ms=min(heads, default=None),
            pauses=pauses,
        )


class _Source:
    """One partition's ids, newest first, below a moving ``position`` (ids at or above it are examined): from
    an index (``index`` and ``name`` given: a recipient's or a creator's lex range) or, for everything,
    counted down from the partition's sequence (ids are ``sequence * partitions + partition``)."""

    def __init__(
        self,
        partition: Partition,
        before: int | None,
        *,
        index: str | None = None,
        name: str = "",
        sequence: int = 0,
        partitions: int = 1,
        floor: int = 0,
    ) -> None:
        self.partition, self.index, self.name, self.step = partition, index, name, partitions
        self.floor = max(partitions, floor)  # the smallest id here is above both (floor: its generation's id_base)
        self.position = before
        self.ids: list[int] = []
        self.done = False
        if index is None:
            top = sequence * partitions + partition.index + 1
            self.position = top if before is None else min(before, top)
            self.done = self._next_id() < self.floor

    def _next_id(self) -> int:
        assert self.position is not None
        return (self.position - 1 - self.partition.index) // self.step * self.step + self.partition.index

    def fetch(self, batch: int) -> Command:
        """The next ``batch`` index members below ``position``."""
        assert self.index is not None
        upper, lower = recipient_bounds(self.name, self.position)
        return Command(("ZREVRANGEBYLEX", self.index, upper, lower, "LIMIT", 0, batch))

    def count_down(self, batch: int) -> list[int]:
        """The next ``batch`` ids this partition may hold below ``position`` (purged ones read as nothing)."""
        top = self._next_id()
        return [i for i in range(top, top - batch * self.step, -self.step) if i >= self.floor]

    def take(self, ids: list[int], batch: int) -> None:
        """Note the ids the last fetch returned; fewer than ``batch`` means this source has no more."""
        self.ids = ids
        if ids:
            self.position = min(ids)
        self.done = len(ids) < batch or (self.index is None and self._next_id() < self.floor)


def read_records(p: Partition, partitions: int, ids: Sequence[int]) -> Script:
    """The step reading the stored state and payload of ``ids`` in ``p`` (see ``ReadReply``), including
    recipients still pending inside a many-recipient call, which have no record of their own yet."""
    keys = [p.state, p.notifications, p.calls, p.call_recipients, p.call_starts, p.by_recipient]
    return Script("read", keys, [partitions, *ids])


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
        (raw,) = yield [read_records(p, len(core.keys.partitions), ids)]
        pairs = ReadReply.read(raw).records
        items += [records.notification(i, s, b) for i, (s, b) in zip(ids, pairs, strict=True) if s and b]
    return sorted(items, key=lambda n: (n.failed_at is None, n.failed_at, n.id))
