"""The dashboard's tables: upcoming, processing, retrying, failed, sent and cancelled notifications, a page at a
time, read from the sorted sets that already hold them. Read-only; no I/O of its own.

A page costs O(log N + limit) per set however deep it starts (``page.lua`` finds the cursor's position by rank or
binary search, never by scanning), so paging holds at millions of rows. The cursor names the next entry to show
(its score and member) and how many of that entry's recipients were shown: a many-recipient call is one due entry
for all of its recipients still pending, and a page may end inside it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence

import msgspec

from ..errors import FieldError
from ..models import Notification, datetime_to_ms
from . import records
from .base import CoreBase
from .keys import Partition
from .replies import PageReply, ReadReply
from .steps import Command, Op, Script
from .views import ReadViews, read_records

TABLES: tuple[str, ...] = ("upcoming", "processing", "retrying", "failed", "sent", "cancelled")
MAX_ROWS = 500
"""Most rows one page may ask for."""
RETRYING_SCAN = 5000
"""Most due entries one page of ``retrying`` examines (retries have no index of their own): a page may come back
short, even empty, with a cursor to go on from."""
RETRYING_BATCH = 500
"""Due entries ``retrying`` reads at a time."""

_CURSOR = re.compile(r"^(\d{1,16}):(-?\d{1,20}):(\d{1,9})$")


class Row(msgspec.Struct, frozen=True):
    """One notification of a table and the score that places it there: the due time (upcoming, retrying), the
    lease deadline (processing), or when its record is purged (failed, sent, cancelled), epoch ms."""

    notification: Notification
    at_ms: int
    partition: int


class TablePage(msgspec.Struct, frozen=True):
    """One page of a table; ``next_cursor`` is None only when nothing more is there."""

    rows: list[Row]
    next_cursor: str | None


class _Entry(msgspec.Struct, frozen=True):
    member: str
    score: int
    partition: Partition

    def order(self) -> tuple[int, bytes]:
        return self.score, self.member.encode()


def parse_cursor(cursor: str) -> tuple[int, str, int]:
    """The position a cursor names: (score, member, recipients of that entry already shown)."""
    found = _CURSOR.match(cursor)
    if found is None:
        raise FieldError(
            f"cursor must be a next_cursor a page returned (like 1795873264259:42:0); got {cursor[:60]!r}", "cursor"
        )
    return int(found[1]), found[2], int(found[3])


def table_page(
    core: CoreBase, table: str, *, cursor: str | None = None, limit: int = 50, partition: int | None = None
) -> Op[TablePage]:
    """One page of ``table`` (one of ``TABLES``): upcoming and retrying soonest due first, processing soonest lease
    deadline first, failed, sent and cancelled newest first; from ``cursor`` on, in one ``partition`` or all."""
    if table not in TABLES:
        raise FieldError(f"table must be one of {', '.join(TABLES)}; got {table[:40]!r}", "table")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_ROWS:
        raise FieldError(f"limit must be between 1 and {MAX_ROWS}; got {limit!r}", "limit")
    count = len(core.keys.partitions)
    if partition is not None and not 0 <= partition < count:
        raise FieldError(f"partition must be between 0 and {count - 1}; got {partition}", "partition")
    chosen = core.keys.partitions if partition is None else (core.keys.partitions[partition],)
    position = None if cursor is None else parse_cursor(cursor)
    desc = table in ("failed", "sent", "cancelled")
    sets = _sets(table, chosen)
    rows: list[Row] = []
    scanned = 0
    while True:
        # Retrying keeps only some of what it reads (pending after a failed attempt), so it reads more at a time.
        want = limit - len(rows) if table != "retrying" else max(limit - len(rows), RETRYING_BATCH)
        score, member, skip = ("", "", 0) if position is None else (str(position[0]), position[1], position[2])
        order = "desc" if desc else "asc"
        replies = yield [Script("page", [key], [order, score, member, want + 1]) for _, key in sets]
        pages = [
            [_Entry(m, s, p) for m, s in PageReply.read(reply).entries]
            for (p, _), reply in zip(sets, replies, strict=True)
        ]
        entries = sorted((e for page in pages for e in page), key=_Entry.order, reverse=desc)
        # A set that filled its page may hold more before the other sets' later entries: stop at the first such end.
        ends = [page[-1].order() for page in pages if len(page) > want]
        if ends:
            frontier = max(ends) if desc else min(ends)
            entries = [e for e in entries if (e.order() >= frontier if desc else e.order() <= frontier)]
        if not entries:
            return TablePage(rows, None)
        # A many-recipient call is one due entry; its recipients still in it are ids call + i * partitions.
        calls = [e for e in entries if e.member.startswith("-")] if table == "upcoming" else []
        headers = (yield [Command(("HGET", e.partition.calls, e.member[1:])) for e in calls]) if calls else []
        spans = {(e.member, e.partition.index): _call_span(h) for e, h in zip(calls, headers, strict=True)}
        # Each id picked, with the position right after it: where the next page starts if it is the last shown.
        picked: list[tuple[int, _Entry, tuple[int, str, int]]] = []
        next_at, more = (entries[0].score, entries[0].member, 0), False
        for at, e in enumerate(entries):
            call = e.member.startswith("-")
            first, end = spans.get((e.member, e.partition.index), (0, 0)) if call else (0, 1)
            if (str(e.score), e.member) == (score, member):
                first = max(first, skip)
            first = min(first, end)
            base, stride = (int(e.member[1:]), count) if call else (int(e.member), 0)
            taken = min(end - first, want - len(picked))
            picked += [(base + i * stride, e, (e.score, e.member, i + 1)) for i in range(first, first + taken)]
            next_at = (e.score, e.member, first + taken)
            more = first + taken < end or at + 1 < len(entries) or bool(ends)
            if len(picked) >= want:
                break
        scanned += len(picked)
        found = yield from _read(core, [i for i, _, _ in picked])
        for index, (i, e, after) in enumerate(picked):
            n = found.get(i)
            if n is None or not _belongs(table, n, e):
                continue
            rows.append(Row(n, e.score, e.partition.index))
            if len(rows) == limit:
                rest = index + 1 < len(picked) or more
                return TablePage(rows, _cursor(after) if rest else None)
        if not more:
            return TablePage(rows, None)
        if table != "retrying" or scanned >= RETRYING_SCAN:
            return TablePage(rows, _cursor(next_at))
        position = next_at


def _cursor(position: tuple[int, str, int]) -> str:
    return f"{position[0]}:{position[1]}:{position[2]}"


def _sets(table: str, partitions: Sequence[Partition]) -> list[tuple[Partition, str]]:
    """The sorted sets a table reads, each with its partition."""
    if table in ("upcoming", "retrying"):
        return [(p, due) for p in partitions for due in p.due_sets]
    return [(p, getattr(p, table)) for p in partitions]


def _call_span(header: bytes | str | None) -> tuple[int, int]:
    """The recipient indexes still pending in a call, from its ``calls`` header: [next, count)."""
    if not header:
        return 0, 0
    fields = records.text(header).split()
    return int(fields[3]), int(fields[2])


_STATUS = {
    "upcoming": "pending",
    "retrying": "pending",
    "processing": "processing",
    "failed": "failed",
    "sent": "sent",
    "cancelled": "cancelled",
}


def _belongs(table: str, n: Notification, e: _Entry) -> bool:
    """Whether what was read still belongs in the table (it may have moved since its set was read); a recipient
    taken out of its call (cancelled, or rescheduled to another time) shows under its own entry, not the call's."""
    if n.scheduled_status != _STATUS[table]:
        return False
    if table == "retrying":
        return n.attempts > 0
    return not e.member.startswith("-") or datetime_to_ms(n.scheduled_at) == e.score


def _read(core: CoreBase, ids: list[int]) -> Op[dict[int, Notification]]:
    """The notifications ``ids`` name (those still stored), read partition by partition in one round trip."""
    if not ids:
        return {}
    count = len(core.keys.partitions)
    groups: dict[int, list[int]] = {}
    for i in ids:
        groups.setdefault(i % count, []).append(i)
    parts = list(groups.items())
    replies = yield [read_records(core.keys.partitions[index], count, group) for index, group in parts]
    found: dict[int, Notification] = {}
    for (_, group), raw in zip(parts, replies, strict=True):
        for i, (state, payload) in zip(group, ReadReply.read(raw).records, strict=True):
            if state is not None and payload is not None:
                with contextlib.suppress(*records.UNDECODABLE):  # a corrupt record is the worker's to fail
                    found[i] = records.notification(i, state, payload)
    return found


SEARCH_WITHIN = 10_000
"""How many of the most recent notifications a title search examines."""


class TitleMatches(msgspec.Struct, frozen=True):
    """Notifications whose title contains the text, newest first, and how many were examined for them."""

    items: list[Notification]
    examined: int


def search_titles(core: ReadViews, text: str, *, limit: int = 50, within: int = SEARCH_WITHIN) -> Op[TitleMatches]:
    """The newest notifications (at most ``limit``) whose title contains ``text``, ignoring case, among the
    ``within`` most recent: titles have no index, so the search is bounded rather than whole."""
    if not text or len(text) > 200:
        raise FieldError(f"title must be 1 to 200 characters to search for; got {len(text)}", "title")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_ROWS:
        raise FieldError(f"limit must be between 1 and {MAX_ROWS}; got {limit!r}", "limit")
    needle = text.casefold()
    items: list[Notification] = []
    examined = 0
    cursor: int | None = None
    while examined < within and len(items) < limit:
        page = yield from core.list(limit=min(1000, within - examined), cursor=cursor)
        examined += len(page.items)
        items += [n for n in page.items if needle in n.title.casefold()]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return TitleMatches(items[:limit], examined)
