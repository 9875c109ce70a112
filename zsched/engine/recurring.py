"""Recurring schedules: create, pause, resume, delete, read and preview them, and advance them when due.

Only the next occurrence is stored, as an ordinary pending notification (status, cancel, retries work as for any
other). Each partition keeps one record per schedule (``recurring``: state, definition and payload; see
``recurring_records``) and, for the active ones, the time of the pending occurrence (``recurring_due``). Python
computes times (``recurrence``); ``advance_recurring.lua`` moves a schedule and creates its occurrence in one
step, idempotent by the occurrence's time. A schedule lives in the partition of its recipients, so they must
share one (always true with one partition). Each operation is a generator of Redis steps (see ``steps``);
nothing here does I/O of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from ..errors import CallTooLargeError, FieldError, IdempotencyConflictError, RecurringNotFoundError, ValidationError
from ..models import RecurringPage, RecurringSchedule, json_encoder, ms_to_datetime
from . import records, recurrence, validation
from .keys import Partition, recipient_member
from .producer import ProducerOps
from .recurrence import Rule
from .recurring_records import Definition, Record, State, decode_record, encode_definition, view
from .replies import AdvanceRecurringReply, StopRecurringReply
from .steps import Command, Op, Script, Step

MAX_LIST = 1000


class Advanced(msgspec.Struct):
    """What one round of ``advance_due`` did in a partition: schedules moved on (or finished), and how long until
    the next one is due (ms; -1 when none is active)."""

    advanced: int
    wait_ms: int
    missed: list[tuple[int, int, bool]] = msgspec.field(default_factory=list)
    """(schedule id, missed times dropped, whether the last missed one fired late) of each schedule this round
    found behind by more than ``recurrence.LATE_GRACE_MS``: an outage, or workers that could not keep up."""
    unreadable: list[int] = msgspec.field(default_factory=list)
    """Schedules due whose stored definition or state cannot be read (corrupt): left where they are."""


class RecurringOps(ProducerOps):
    """Recurring schedules' operations."""

    def create_recurring(
        self,
        recipients: Iterable[object],
        title: object,
        message: object,
        *,
        cron: str | None = None,
        every: timedelta | float | None = None,
        timezone: str = "UTC",
        start: datetime | None = None,
        end: datetime | None = None,
        max_count: int | None = None,
        catch_up: str = "skip",
        type: object = "system",
        priority: object = "normal",
        data: object = None,
        created_by: str | None = None,
        channels: Iterable[str] = (),
        idempotency_key: object = None,
    ) -> Op[RecurringSchedule]:
        """A new schedule and its first occurrence (the first time after now, at or after ``start``). A retry with
        the same ``idempotency_key`` and arguments returns that schedule and creates nothing; other arguments under
        the key raise ``IdempotencyConflictError``."""
        key = validation.idempotency_key(idempotency_key)
        people = validation.recipients(recipients)
        creator = None if created_by is None else validation.user_id(created_by, "created_by")
        body = validation.payload(title, message, type, priority, data, creator, channels)
        if (cron is None) == (every is None):
            raise FieldError("give exactly one of cron= (a 5-field expression) or every= (an interval)", "cron")
        zone = recurrence.check_zone(timezone)
        rough = self.rough_now_ms()
        start_ms = validation.at_ms(start, rough, "start_at") if start is not None else None
        end_ms = validation.at_ms(end, rough, "end_at") if end is not None else None
        if max_count is not None and (isinstance(max_count, bool) or not isinstance(max_count, int) or max_count < 1):
            raise FieldError(f"max_count must be a whole number of at least 1; got {max_count!r}", "max_count")
        way = recurrence.check_catch_up(catch_up)
        payload_json = json_encoder.encode(body)
        if self.max_call_bytes and len(payload_json) * len(people) > self.max_call_bytes:
            raise CallTooLargeError(len(payload_json), len(people), self.max_call_bytes)
        rule_fields: dict[str, Any] = (
            {"cron": recurrence.check_cron(cron)}
            if cron is not None
            else {"every_ms": recurrence.check_every_ms(every)}
        )
        p = self._partition_of(people)
        now_ms = yield from self._now()
        rule = Rule(start_ms=now_ms if start_ms is None else start_ms, zone=zone, end_ms=end_ms, **rule_fields)
        if end_ms is not None and end_ms < rule.start_ms:
            raise FieldError(f"end_at must not be before start_at; got {end.isoformat() if end else end}", "end_at")
        first = rule.first(now_ms)
        if first is None:
            raise FieldError("this schedule has no occurrence after now: check end_at and the rule", "end_at")
        definition = Definition(
            rule=rule, catch_up=way, max_count=max_count, recipients=people, payload=body, created_at=now_ms
        )
        if key:  # the request, not what was derived from it (a default start is now, which a retry moves)
            request = [people, rule_fields, zone, start_ms, end_ms, max_count, way]
            op_id = hashlib.sha256(json_encoder.encode(request) + payload_json).hexdigest()
            ops = p.idempotency(f"recurring:{key}")
        else:
            ops, op_id = self.op_slot(p, now_ms)
        step = self._advance_step(
            p,
            definition,
            "create",
            "",
            "",
            first,
            payload_json,
            op_id=op_id,
            ops=ops,
            keyed=bool(key),
            stored=encode_definition(definition, payload_json),
        )
        (raw,) = yield [step]
        reply = AdvanceRecurringReply.read(raw)
        if reply.code == "conflict":
            raise IdempotencyConflictError(str(key))
        if reply.code == "replayed":  # the first call's schedule, as it was defined then and stands now
            return (yield from self.recurring(reply.schedule_id))
        return view(reply.schedule_id, definition, State.parse(reply.state), len(self.keys.partitions))

    def recurring(self, schedule_id: int | str) -> Op[RecurringSchedule]:
        """The schedule as it is now; RecurringNotFoundError if unknown or deleted."""
        sid = validation.notification_id(schedule_id, "schedule_id")
        got = yield from self._read(sid)
        return view(sid, got.definition, got.state, len(self.keys.partitions))

    def list_recurring(
        self, *, created_by: str | None = None, limit: int = 50, cursor: int | str | None = None
    ) -> Op[RecurringPage]:
        """Schedules by id, above ``cursor``: one creator's, or every one when ``created_by`` is None."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
            raise FieldError(f"limit must be from 1 to {MAX_LIST}; got {limit!r}", "limit")
        after = -1 if cursor is None else validation.notification_id(cursor, "cursor")
        if created_by is not None:
            who = validation.user_id(created_by, "created_by")
            # Each partition's next limit + 1 above the cursor, by lex order (ids are zero-padded: numeric order).
            low = f"[{who} " if after < 0 else f"({recipient_member(who, after)}"
            found = yield [
                Command(("ZRANGE", p.recurring_by_creator, low, f"({who}!", "BYLEX", "LIMIT", 0, limit + 1))
                for p in self.keys.partitions
            ]
            ids = sorted(int(_text(m).rpartition(" ")[2]) for members in found for m in members)
        else:  # every schedule: each partition's ids are read whole (an admin's view, not a hot path)
            found = yield [Command(("HKEYS", p.recurring)) for p in self.keys.partitions]
            ids = sorted(int(_text(m)) for members in found for m in members)
        ids = [i for i in ids if i > after]
        page, more = ids[:limit], len(ids) > limit
        items: list[RecurringSchedule] = []
        if page:
            got = yield [Command(("HGET", self.keys.for_id(sid).recurring, sid)) for sid in page]
            for sid, raw in zip(page, got, strict=True):
                if raw is not None:  # deleted between the two reads
                    record = decode_record(raw)
                    items.append(view(sid, record.definition, record.state, len(self.keys.partitions)))
        return RecurringPage(items=items, next_cursor=page[-1] if more else None)

    def preview_recurring(self, schedule_id: int | str, count: int = 10) -> Op[list[datetime]]:
        """The next ``count`` times the schedule fires from now (as if resumed now, when paused), within its end
        and its maximum count."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= recurrence.MAX_PREVIEW:
            raise FieldError(f"count must be from 1 to {recurrence.MAX_PREVIEW}; got {count!r}", "count")
        sid = validation.notification_id(schedule_id, "schedule_id")
        got = yield from self._read(sid)
        definition, state = got.definition, got.state
        now_ms = yield from self._now()
        if state.status == "finished":
            return []
        times = definition.rule.preview(now_ms, count)
        if definition.max_count is not None:
            pending_ahead = 1 if state.status == "active" and state.next_ms > now_ms else 0
            times = times[: max(0, definition.max_count - state.count + pending_ahead)]
        return [ms_to_datetime(t) for t in times]

    def pause_recurring(self, schedule_id: int | str) -> Op[RecurringSchedule]:
        """Stop creating occurrences, and cancel the pending one; the schedule is kept, to resume later."""
        return (yield from self._stop(schedule_id, "pause"))

    def delete_recurring(self, schedule_id: int | str) -> Op[RecurringSchedule]:
        """Remove the schedule and cancel its pending occurrence; returns it as it was."""
        return (yield from self._stop(schedule_id, "delete"))

    def resume_recurring(self, schedule_id: int | str) -> Op[RecurringSchedule]:
        """Start a paused schedule again from its next time after now (the times passed while paused are not
        fired); an active or finished one is returned unchanged."""
        sid = validation.notification_id(schedule_id, "schedule_id")
        got = yield from self._read(sid)
        definition, state = got.definition, got.state
        if state.status == "paused":
            now_ms = yield from self._now()
            full = definition.max_count is not None and state.count >= definition.max_count
            nxt = None if full else definition.rule.after(now_ms)
            p = self.keys.for_id(sid)
            step = self._advance_step(p, definition, "resume", sid, "", nxt, got.payload_json)
            (raw,) = yield [step]
            reply = AdvanceRecurringReply.read(raw)
            if reply.code == "missing":
                raise RecurringNotFoundError(sid)
            state = State.parse(reply.state)
        return view(sid, definition, state, len(self.keys.partitions))

    def advance_due(self, partition: Partition, limit: int = 100) -> Op[Advanced]:
        """Advance every schedule of one partition whose pending occurrence's time has come (at most ``limit``):
        record it as fired and create the next, by the schedule's ``catch_up`` when some were missed."""
        p = partition
        clock, head = yield [Command(("TIME",)), Command(("ZRANGE", p.recurring_due, 0, limit - 1, "WITHSCORES"))]
        now_ms = self.clock() if self.clock else int(clock[0]) * 1000 + int(clock[1]) // 1000
        due = [(int(_text(member)), int(score)) for member, score in head if int(score) <= now_ms]
        later = [int(score) for _, score in head if int(score) > now_ms]
        if not due:
            return Advanced(0, later[0] - now_ms if later else -1)
        ids = [sid for sid, _ in due]
        (stored,) = yield [Command(("HMGET", p.recurring, *ids))]
        steps: list[Step] = []
        behind: list[tuple[int, int, bool]] = []
        unreadable: list[int] = []
        upcoming = later[:1]  # the earliest time a schedule comes due next, among those seen
        for sid, raw in zip(ids, stored, strict=True):
            if raw is None:  # deleted since
                continue
            try:
                record = decode_record(raw)
            except records.UNDECODABLE:  # the rest of the batch goes on; the worker says which one
                unreadable.append(sid)
                continue
            definition, state = record.definition, record.state
            if state.status != "active":
                continue
            step = recurrence.advance(
                definition.rule, state.next_ms, now_ms, definition.catch_up, state.count, definition.max_count
            )
            if step.next_ms is not None:
                upcoming.append(step.next_ms)
            steps.append(
                self._advance_step(p, definition, "advance", sid, state.next_ms, step.next_ms, record.payload_json)
            )
            behind.append((sid, step.skipped, step.late))
        applied = (
            [AdvanceRecurringReply.read(raw).code in ("advanced", "finished") for raw in (yield steps)] if steps else []
        )
        # A full batch, or a missed occurrence fired late (``catch_up = last``), leaves work due now.
        wait_ms = 0 if len(due) == limit else (max(0, min(upcoming) - now_ms) if upcoming else -1)
        missed = [b for b, done in zip(behind, applied, strict=True) if done and (b[1] or b[2])]
        return Advanced(sum(applied), wait_ms, missed, unreadable)

    # -- helpers -------------------------------------------------------------------------------------------

    def _now(self) -> Op[int]:
        """Now on the one clock: the pinned one, or the server's TIME."""
        if self.clock is not None:
            return self.clock()
        ((seconds, micros),) = yield [Command(("TIME",))]
        return int(seconds) * 1000 + int(micros) // 1000

    def _read(self, sid: int) -> Op[Record]:
        (raw,) = yield [Command(("HGET", self.keys.for_id(sid).recurring, sid))]
        if raw is None:
            raise RecurringNotFoundError(sid)
        return decode_record(raw)

    def _stop(self, schedule_id: int | str, move: str) -> Op[RecurringSchedule]:
        sid = validation.notification_id(schedule_id, "schedule_id")
        definition = (yield from self._read(sid)).definition
        p = self.keys.for_id(sid)
        creator = definition.payload.created_by or ""
        (raw,) = yield [
            Script("stop_recurring", [p.recurring, p.recurring_due, p.recurring_by_creator], [sid, move, creator])
        ]
        reply = StopRecurringReply.read(raw)
        if reply.code == "missing":
            raise RecurringNotFoundError(sid)
        state = State.parse(reply.state)
        shown = view(sid, definition, state, len(self.keys.partitions))
        # The occurrence already created: cancelled while still pending (one that is being delivered, or was,
        # says not_pending, which is fine). A crash before this leaves it to fire once; pausing again cancels it.
        if shown.occurrence_ids:
            yield [self.cancel_step(i) for i in shown.occurrence_ids]
        return shown

    def _partition_of(self, people: Sequence[str]) -> Partition:
        p = self.keys.for_recipient(people[0])
        other = next((r for r in people if self.keys.for_recipient(r) is not p), None)
        if other is not None:
            raise ValidationError(
                f"a recurring schedule's recipients must share one partition (its occurrences are created in one "
                f"atomic step); {people[0]!r} and {other!r} do not with {len(self.keys.partitions)} partitions. "
                "Create one schedule per recipient instead",
                "recipients",
            )
        return p

    def _advance_step(
        self,
        p: Partition,
        definition: Definition,
        move: str,
        sid: int | str,
        fired_ms: int | str,
        next_ms: int | None,
        payload_json: bytes,
        *,
        op_id: str = "",
        ops: str | None = None,
        keyed: bool = False,
        stored: bytes = b"",
    ) -> Script:
        creator = definition.payload.created_by or ""
        keys = [
            p.recurring,
            p.recurring_due,
            p.recurring_sequence,
            p.due_for(definition.payload.priority),
            p.notifications,
            p.state,
            p.by_recipient,
            p.counters,
            p.sequence,
            ops if ops is not None else p.ops(0),
        ]
        if creator:
            keys += [p.by_creator, p.pending_by_creator, p.recurring_by_creator]
        if len(definition.recipients) > 1:
            keys += p.call_keys
        args: list[str | int] = [
            self.now_arg(),
            move,
            sid,
            fired_ms,
            "" if next_ms is None else next_ms,
            len(self.keys.partitions),
            p.index,
            p.wakeup,
            payload_json.decode(),
            definition.payload.priority,
            self.idempotency_ttl_ms if keyed else self.op_ttl_ms,
            op_id,
            " ".join(definition.recipients),
            stored.decode(),
            creator,
            "key" if keyed else "",
        ]
        return Script("advance_recurring", keys, args)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
