"""Every zsched operation as a plan of Redis steps, with no I/O of its own.

An operation is a generator: it yields a batch of steps (script calls or plain commands), receives
their replies, and returns its result. ``client.Scheduler`` and ``client.AsyncScheduler`` drive the
same generators over a sync or an asyncio connection, so the logic exists once.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from . import validation
from .backoff import RetryPolicy
from .errors import FieldError, IdempotencyConflictError, NotFoundError, NotPendingError, PastScheduleError
from .keys import Keyspace, Partition
from .models import (
    STATUSES,
    Notification,
    Page,
    Payload,
    ScheduleResult,
    State,
    Stats,
    json_encoder,
    ms_to_datetime,
    payload_decoder,
    state_decoder,
)

DAY_MS = 24 * 3600 * 1000


class Script(msgspec.Struct, frozen=True):
    """A step that runs one Lua script."""

    name: str
    keys: list[str]
    args: list[str | int]


class Command(msgspec.Struct, frozen=True):
    """A step that runs one plain Redis command."""

    args: tuple[str | int, ...]


Step = Script | Command
Op = Generator[list[Step], list[Any], Any]


class Retention(msgspec.Struct, frozen=True):
    """How long terminal records are kept before purge removes them (the seed keeps cancelled 30 days)."""

    sent_ms: int = 90 * DAY_MS
    cancelled_ms: int = 30 * DAY_MS
    failed_ms: int = 90 * DAY_MS


class Claimed(msgspec.Struct):
    """What one claim returned: the server's time, how long until the next due one, and the batch."""

    now_ms: int
    wait_ms: float
    notifications: list[Notification]


class Core:
    """Builds the steps of each operation and turns replies into results; owns no connection."""

    def __init__(
        self,
        keyspace: Keyspace | None = None,
        *,
        retry: RetryPolicy | None = None,
        retention: Retention | None = None,
        idempotency_ttl_ms: int = DAY_MS,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.keys = keyspace or Keyspace()
        self.retry = retry or RetryPolicy()
        self.retention = retention or Retention()
        self.idempotency_ttl_ms = idempotency_ttl_ms
        self.clock = clock

    def now_arg(self) -> str:
        """ARGV[1] of every script: '' lets the server's TIME decide; a pinned clock passes its value."""
        return "" if self.clock is None else str(self.clock())

    def rough_now_ms(self) -> int:
        """This process's idea of now, used only for coarse sanity bounds, never to decide "due"."""
        return self.clock() if self.clock is not None else int(time.time() * 1000)

    # -- producers -------------------------------------------------------------------------------

    def schedule(
        self,
        recipients: Iterable[object],
        title: object,
        message: object,
        *,
        at: datetime | None = None,
        delay: timedelta | float | None = None,
        type: object = "system",
        priority: object = "normal",
        data: object = None,
        idempotency_key: object = None,
        created_by: str | None = None,
        channels: Iterable[str] = (),
    ) -> Op:
        """Create one pending notification per distinct recipient; all or nothing is validated first."""
        people = validation.recipients(recipients)
        body = validation.payload(title, message, type, priority, data, created_by, channels)
        at_ms, delay_ms = validation.due(at, delay, self.rough_now_ms())
        key = validation.idempotency_key(idempotency_key)
        payload_json = json_encoder.encode(body)
        fingerprint = hashlib.sha256(
            json_encoder.encode([people, at_ms, delay_ms]) + payload_json).hexdigest() if key else ""

        groups: dict[int, list[str]] = {}
        for person in people:
            groups.setdefault(self.keys.for_recipient(person).index, []).append(person)
        steps: list[Step] = []
        for index, members in groups.items():
            p = self.keys.partitions[index]
            steps.append(Script("schedule", [
                p.due, p.notifications, p.state, p.by_recipient, p.counters, p.sequence,
                p.idempotency(key or ""),
            ], [
                self.now_arg(), "" if at_ms is None else at_ms, delay_ms, len(self.keys.partitions), index,
                self.idempotency_ttl_ms if key else 0, fingerprint, p.wakeup, payload_json.decode(), *members,
            ]))
        replies = yield steps

        ids_of: dict[str, int] = {}
        due_ms, replayed = 0, False
        for members, reply in zip(groups.values(), replies, strict=True):
            outcome = _text(reply[0])
            if outcome == "conflict":
                raise IdempotencyConflictError(str(key))
            if outcome == "past":
                raise _past(int(reply[1]), int(reply[2]))
            due_ms, replayed = int(reply[1]), outcome == "replayed"
            ids_of.update(zip(members, (int(i) for i in reply[3:]), strict=True))
        ids = [ids_of[person] for person in people]
        return ScheduleResult(notification_ids=ids, count=len(ids), scheduled_at=ms_to_datetime(due_ms),
                              replayed=replayed)

    def cancel(self, notification_id: int) -> Op:
        """Cancel a pending notification; NotFoundError or NotPendingError otherwise."""
        p = self.keys.for_id(notification_id)
        (reply,) = yield [Script("cancel", [p.due, p.state, p.cancelled, p.counters], [
            self.now_arg(), self.retention.cancelled_ms, notification_id])]
        _raise_unless(reply, "cancelled", notification_id, "cancel")
        return (yield from self.status(notification_id))

    def reschedule(
        self, notification_id: int, *, at: datetime | None = None, delay: timedelta | float | None = None,
    ) -> Op:
        """Move a pending notification to a new due time."""
        at_ms, delay_ms = validation.due(at, delay, self.rough_now_ms())
        p = self.keys.for_id(notification_id)
        (reply,) = yield [Script("reschedule", [p.due, p.state], [
            self.now_arg(), notification_id, "" if at_ms is None else at_ms, delay_ms, p.wakeup])]
        if _text(reply[0]) == "past":
            raise _past(int(reply[1]), int(reply[2]))
        _raise_unless(reply, "rescheduled", notification_id, "reschedule")
        return (yield from self.status(notification_id))

    # -- readers -----------------------------------------------------------------------------------

    def status(self, notification_id: int) -> Op:
        """The notification as it is now; NotFoundError if unknown or purged."""
        p = self.keys.for_id(notification_id)
        state, payload = yield [Command(("HGET", p.state, notification_id)),
                                Command(("HGET", p.notifications, notification_id))]
        if state is None or payload is None:
            raise NotFoundError(notification_id)
        return _notification(notification_id, state, payload)

    def list_for(
        self, recipient: object, *, status: str | None = None, limit: int = 50, cursor: int | None = None,
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
            ids = [int(_text(m).rsplit(" ", 1)[1]) for m in members]
            states, payloads = yield [Command(("HMGET", p.state, *ids)), Command(("HMGET", p.notifications, *ids))]
            for notification_id, state, payload in zip(ids, states, payloads, strict=True):
                upper = f"({person} {notification_id:016d}"
                if state is None or payload is None:
                    continue
                n = _notification(notification_id, state, payload)
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
            steps += [Command(("ZCARD", p.due)), Command(("ZCARD", p.processing)), Command(("ZCARD", p.sent)),
                      Command(("ZCARD", p.cancelled)), Command(("ZCARD", p.failed)),
                      Command(("ZRANGE", p.due, 0, 0, "WITHSCORES")), Command(("HGETALL", p.counters))]
        replies = yield steps
        seconds, micros = replies[0]
        now_ms = self.clock() if self.clock else int(seconds) * 1000 + int(micros) // 1000
        counts = dict.fromkeys(STATUSES, 0)
        totals: dict[str, int] = {}
        earliest: int | None = None
        for i in range(len(chosen)):
            *cards, first, counters = replies[1 + 7 * i: 8 + 7 * i]
            for name, card in zip(STATUSES, cards, strict=True):
                counts[name] += int(card)
            for field, value in counters.items():
                totals[_text(field)] = totals.get(_text(field), 0) + int(value)
            if first:
                score = int(float(first[0][1]))
                earliest = score if earliest is None else min(earliest, score)
        return Stats(
            counts=counts, totals=totals,
            next_due_at=None if earliest is None else ms_to_datetime(earliest),
            oldest_overdue_ms=max(0, now_ms - earliest) if earliest is not None else 0,
            server_time=ms_to_datetime(now_ms))

    # -- worker side -------------------------------------------------------------------------------

    def claim(self, partition: Partition, limit: int, lease_ms: int) -> Op:
        """Claim up to ``limit`` due notifications of one partition under a lease."""
        p = partition
        (reply,) = yield [Script("claim", [p.due, p.processing, p.notifications, p.state, p.counters],
                                 [self.now_arg(), limit, lease_ms])]
        items = [_notification(int(reply[i]), reply[i + 1], reply[i + 2]) for i in range(2, len(reply), 3)]
        wait_us = int(reply[1])
        return Claimed(now_ms=int(reply[0]), wait_ms=-1 if wait_us < 0 else wait_us / 1000, notifications=items)

    def ack(self, partition: Partition, ids: Sequence[int]) -> Op:
        """Mark delivered notifications sent; returns (server now ms, how many were acked)."""
        p = partition
        (reply,) = yield [Script("ack", [p.due, p.processing, p.state, p.sent, p.counters],
                                 [self.now_arg(), self.retention.sent_ms, *ids])]
        return int(reply[0]), int(reply[1])

    def fail(self, partition: Partition, failures: Sequence[tuple[Notification, str]],
             delays_ms: Mapping[int, int | None] | None = None) -> Op:
        """Retry each failed delivery after the policy's backoff, or fail it for good when none is left.

        ``delays_ms`` (notification id -> delay, None: no retry left) passes backoffs the caller already
        drew, so a jittered delay it logs is the one applied. A failure is applied only while the
        notification is still under the lease of the claim it names (``n.attempts``); a stale report is
        ignored. Returns (retried, failed).
        """
        p = partition
        args: list[str | int] = [self.now_arg(), self.retention.failed_ms, p.wakeup]
        for n, error in failures:
            delay = delays_ms[n.id] if delays_ms is not None else self.retry.delay_ms(n.attempts)
            args += [n.id, n.attempts, -1 if delay is None else delay, error[:2000]]
        (reply,) = yield [Script("retry", [p.due, p.processing, p.state, p.failed, p.counters], args)]
        return int(reply[1]), int(reply[2])

    def reap(self, partition: Partition, limit: int = 1000) -> Op:
        """Hand expired leases back to due (or fail them after the last attempt); (requeued, failed)."""
        p = partition
        (reply,) = yield [Script("reap", [p.due, p.processing, p.state, p.failed, p.counters], [
            self.now_arg(), limit, self.retry.max_attempts, self.retention.failed_ms, p.wakeup])]
        return int(reply[1]), int(reply[2])

    def purge(self, partition: Partition, limit: int = 1000) -> Op:
        """Remove terminal records past their retention, with their index entries; how many."""
        p = partition
        (reply,) = yield [Script("purge", [p.sent, p.cancelled, p.failed, p.notifications, p.state,
                                            p.by_recipient, p.counters], [self.now_arg(), limit])]
        return int(reply[1])


def _notification(notification_id: int, state: bytes | str, payload: bytes | str) -> Notification:
    st: State = state_decoder.decode(state)
    body: Payload = payload_decoder.decode(payload)
    return Notification.from_stored(notification_id, st, body)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _raise_unless(reply: list[Any], expected: str, notification_id: int, action: str) -> None:
    outcome = _text(reply[0])
    if outcome == "missing":
        raise NotFoundError(notification_id)
    if outcome == "not_pending":
        raise NotPendingError(notification_id, _text(reply[1]), action)
    if outcome != expected:
        raise RuntimeError(f"unexpected reply from {action} script: {reply!r}")


def _past(due_ms: int, now_ms: int) -> PastScheduleError:
    ago = (now_ms - due_ms) / 1000
    return PastScheduleError(
        f"scheduled_at must be in the future; got {ms_to_datetime(due_ms).isoformat()} "
        f"({_human(ago)} ago by the server's clock). Pick a later time, or use delay=0 to send now",
        "scheduled_at")


def _human(seconds: float) -> str:
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.1f} s"
