"""Producer operations: schedule, cancel, reschedule, and requeue dead letters.

Each is a generator of Redis steps (see ``steps``); nothing here does I/O of its own.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import msgspec

from ..errors import (
    CallTooLargeError,
    FieldError,
    IdempotencyConflictError,
    PendingLimitError,
    UnavailableError,
    refusal_error,
)
from ..models import Notification, Payload, ScheduleResult, TemplateRef, json_encoder, ms_to_datetime
from . import validation
from .base import CoreBase
from .keys import Partition
from .layout import follow_layout
from .replies import ChangeReply, CommitReply, RequeueDeadReply, ScheduleReply, StageReply
from .steps import Command, Op, Script, Step
from .views import ReadViews

MOVED_TRIES = 3
"""How many times a schedule call follows a reshard's ``moved`` before it gives up (one reshard at a time)."""


class ScheduleMoved(Exception):
    """A partition of the call was sealed by a reshard into ``generation``; ``kept`` maps the recipients whose
    parts were committed before it to their ids (``runs``: those parts' first id and count)."""

    def __init__(
        self, generation: int, kept: dict[str, int] | None = None, runs: list[tuple[int, int]] | None = None
    ) -> None:
        super().__init__(f"resharded into generation {generation}")
        self.generation = generation
        self.kept = kept or {}
        self.runs = runs or []


class CheckedCall(msgspec.Struct, frozen=True):
    """A schedule call's arguments once checked: the same for every partition, and every generation, it is tried in."""

    body: Payload
    payload_json: bytes
    at_ms: int | None
    delay_ms: int
    now_ms: int  # this process's clock when it was checked: the time bucket of each step's outcome
    key: str | None  # the idempotency key
    creator: str | None
    collapsing: str | None  # the collapse key


class ProducerOps(ReadViews):
    """Operations that create or change pending notifications."""

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
        expires_at: datetime | None = None,
        on_late: object = "send",
        late_after: timedelta | float | None = None,
        collapse_key: object = None,
        template: TemplateRef | None = None,
        spread: timedelta | float | None = None,
        digest_key: object = None,
        digest_window: timedelta | float | None = None,
        digest_max: object = None,
    ) -> Op[ScheduleResult]:
        """Create one pending notification per distinct recipient; all or nothing is validated first.

        ``expires_at``, ``on_late`` and ``late_after`` say when it is no longer worth sending (it ends
        ``expired`` when claimed after that); with ``collapse_key``, each recipient's pending notification
        scheduled earlier with the same key ends ``collapsed``. With ``spread``, the recipients are due spread
        evenly over that long after the due time, so a huge fan-out does not land in one instant. With ``digest_key``,
        each recipient's notifications with that key due within ``digest_window`` of the first go out together, as
        one delivery per channel (at most ``digest_max`` in one), none before its own due time. With ``template``
        (see ``TemplateOps.schedule_template``), title and message are its preview and the worker renders it when
        sent. A partition sealed by a reshard answers ``moved``: the layout is read again and the call (or the
        part of it not yet committed) goes to the new generation."""
        people = validation.recipients(recipients)
        creator = None if created_by is None else validation.user_id(created_by, "created_by")
        now_ms = self.rough_now_ms()
        at_ms, delay_ms = validation.due(at, delay, now_ms)
        expiry = validation.expiry(expires_at, on_late, late_after, at_ms, delay_ms, now_ms)
        collapsing = validation.collapse_key(collapse_key)
        spread_ms = validation.spread(spread)
        digesting = validation.digest(
            digest_key, digest_window, digest_max, self.digest_window_ms, self.digest_max, expiry
        )
        body = validation.payload(
            title, message, type, priority, data, creator, channels, expiry, collapsing, spread_ms, digesting
        )
        if template is not None:
            body.template = template
        key = validation.idempotency_key(idempotency_key)
        call = CheckedCall(body, json_encoder.encode(body), at_ms, delay_ms, now_ms, key, creator, collapsing)
        if self.max_call_bytes and len(call.payload_json) * len(people) > self.max_call_bytes:
            raise CallTooLargeError(len(call.payload_json), len(people), self.max_call_bytes)

        kept: dict[str, int] = {}  # recipients a partition committed before another was found sealed
        runs: list[tuple[int, int]] = []
        for _ in range(MOVED_TRIES):
            left = [person for person in people if person not in kept] if kept else people
            try:
                result = yield from self._schedule_in_layout(left, call)
            except ScheduleMoved as moved:
                kept.update(moved.kept)
                runs += moved.runs
                yield from follow_layout(self)
                continue
            if not kept:
                return result
            kept.update(zip(left, result.notification_ids, strict=True))
            ids = [kept[person] for person in people]
            parts = [*runs, *(_part(text) for text in result.batch_id.split("-"))]
            return ScheduleResult(
                notification_ids=ids,
                count=len(ids),
                scheduled_at=result.scheduled_at,
                replayed=result.replayed,
                batch_id=validation.batch_of(parts),
            )
        raise UnavailableError(f"the keyspace was resharded {MOVED_TRIES} times while this call ran; send it again")

    def _schedule_in_layout(self, people: list[str], call: CheckedCall) -> Op[ScheduleResult]:
        """``schedule`` of ``people`` (checked by ``validation.recipients``) in the generation this process knows;
        ``ScheduleMoved`` when a partition was sealed."""
        body, payload_json, key, creator = call.body, call.payload_json, call.key, call.creator
        at_ms, delay_ms, now_ms, collapsing = call.at_ms, call.delay_ms, call.now_ms, call.collapsing
        fingerprint = (
            hashlib.sha256(json_encoder.encode([people, at_ms, delay_ms]) + payload_json).hexdigest() if key else ""
        )
        if key and len(self.keys.generations) > 1:
            earlier = yield from self._answered_before_reshard(people, key, fingerprint)
            if earlier is not None:
                return earlier

        groups: dict[int, list[str]] = {}
        if len(self.keys.partitions) == 1:
            groups[0] = people
        else:
            for person in people:
                groups.setdefault(self.keys.for_recipient(person).index, []).append(person)
        # The pending cap: one partition's script checks it atomically, given what the creator holds in the
        # others; a call spanning partitions is checked here first (concurrent calls may each pass: the cap
        # is approximate across partitions, exceeded by at most what calls racing this one add).
        cap = self.max_pending_per_creator if creator else 0
        held = dict.fromkeys(groups, 0)
        total = 0
        if cap and len(self.keys.partitions) > 1:
            counts = yield [Command(("HGET", p.pending_by_creator, str(creator))) for p in self.keys.partitions]
            held = {p.index: int(c or 0) for p, c in zip(self.keys.partitions, counts, strict=True)}
            total = sum(held.values())
            if len(groups) > 1:
                if total + len(people) > cap:
                    raise PendingLimitError(str(creator), total, len(people), cap)
                cap = 0
        due_args: list[str | int] = ["" if at_ms is None else at_ms, delay_ms]
        if len(groups) > 1:
            return (
                yield from self._schedule_staged(
                    people, groups, due_args, key, fingerprint, body, payload_json, creator, total, now_ms, collapsing
                )
            )
        ((index, members),) = groups.items()
        p = self.keys.partitions[index]
        ops, op_id = self.op_slot(p, now_ms)
        keys = [p.due_for(body.priority), p.notifications, p.state, p.by_recipient, p.counters, p.sequence, ops]
        args: list[str | int] = [
            self.now_arg(),
            *due_args,
            len(self.keys.partitions),
            index,
            p.wakeup,
            payload_json.decode(),
            body.priority,
            self.op_ttl_ms,
            op_id,
            " ".join(members),  # one argument, however many: a recipient id has no spaces
        ]
        # Only what the call uses is sent: every key and argument costs the client its encoding.
        if key:
            keys.append(p.idempotency(key))
            args += ["idem_ttl_ms", self.idempotency_ttl_ms, "fingerprint", fingerprint]
        if creator:
            keys += [p.by_creator, p.pending_by_creator]
            args += ["created_by", creator, "max_pending", cap, "others", total - held[index] if cap else 0]
        if len(members) > 1:  # a single recipient gets a record of its own, not a pending call
            keys += p.call_keys
        if collapsing:
            keys += self._collapse_keys(p)
            args += ["collapse_key", collapsing, "keep_collapsed_ms", self.retention.cancelled_ms]
        keys.append(p.sealed)  # always the last key
        (raw,) = yield [Script("schedule", keys, args)]
        reply = ScheduleReply.read(raw)
        if reply.code == "moved":
            raise ScheduleMoved(reply.generation)
        refusal = reply.refusal(str(key), str(creator), len(people))
        if refusal is not None:
            raise refusal_error(refusal)
        ids = reply.ids
        return ScheduleResult(
            notification_ids=ids,
            count=len(ids),
            scheduled_at=ms_to_datetime(reply.due_ms),
            replayed=reply.code == "replayed",
            batch_id=f"{ids[0]}x{len(ids)}",  # validation.batch_of for one partition's part
        )

    def _schedule_staged(
        self,
        people: list[str],
        groups: dict[int, list[str]],
        due_args: list[str | int],
        key: str | None,
        fingerprint: str,
        body: Payload,
        payload_json: bytes,
        creator: str | None,
        total: int,
        now_ms: int,
        collapsing: str | None,
    ) -> Op[ScheduleResult]:
        """A call spanning partitions, in two rounds, since no script spans two Cluster slots: each partition
        checks and stages its part where no reader looks, and only when every part is staged does each
        partition commit its part, making it visible. A refusal anywhere deletes the staged parts (they
        also expire, after ``stage_ttl_ms``, when a call is interrupted); a retry with the same idempotency
        key resumes the staged parts and returns the same ids. The cap was checked across partitions by
        the caller (``total``), so the stage scripts do not check it again."""
        call = f"k:{key}" if key else f"c:{secrets.token_hex(8)}"
        stages: list[Step] = []
        for index, members in groups.items():
            p = self.keys.partitions[index]
            ops, op_id = self.op_slot(p, now_ms)
            stages.append(
                Script(
                    "stage_schedule",
                    [p.sequence, p.idempotency(key or ""), p.staged(call), p.pending_by_creator, ops, p.sealed],
                    [
                        self.now_arg(),
                        *due_args,
                        len(self.keys.partitions),
                        index,
                        self.idempotency_ttl_ms if key else 0,
                        fingerprint,
                        self.stage_ttl_ms,
                        payload_json.decode(),
                        creator or "",
                        0,
                        total,
                        body.priority,
                        self.op_ttl_ms,
                        op_id,
                        " ".join(members),  # a recipient id has no spaces
                    ],
                )
            )
        staged = [StageReply.read(raw) for raw in (yield stages)]
        moved = next((r for r in staged if r.code == "moved"), None)
        if moved is not None:  # nothing of the call is visible yet: all of it goes to the new generation
            parts = [self.keys.partitions[i] for i, r in zip(groups, staged, strict=True) if r.code == "staged"]
            if parts:
                yield [Command(("DEL", p.staged(call))) for p in parts]
            raise ScheduleMoved(moved.generation)
        refusal = next((r.refusal(str(key), str(creator), len(people)) for r in staged if r.code != "staged"), None)
        if refusal is not None:
            parts = [self.keys.partitions[i] for i, r in zip(groups, staged, strict=True) if r.code == "staged"]
            if parts:
                yield [Command(("DEL", p.staged(call))) for p in parts]
            raise refusal_error(refusal)

        commits: list[Step] = []
        for index, reply in zip(groups, staged, strict=True):
            if reply.code == "staged":
                p = self.keys.partitions[index]
                ops, op_id = self.op_slot(p, now_ms)
                commits.append(
                    Script(
                        "commit_schedule",
                        [
                            p.due_for(body.priority),
                            p.notifications,
                            p.state,
                            p.by_recipient,
                            p.counters,
                            p.idempotency(key or ""),
                            p.by_creator,
                            p.pending_by_creator,
                            p.staged(call),
                            ops,
                            *p.call_keys,
                            p.sealed,
                            *(self._collapse_keys(p) if collapsing else []),
                        ],
                        [
                            self.now_arg(),
                            p.wakeup,
                            self.op_ttl_ms,
                            op_id,
                            collapsing or "",
                            self.retention.cancelled_ms,
                        ],
                    )
                )
        committed = iter([CommitReply.read(raw) for raw in (yield commits)] if commits else [])
        ids_of: dict[str, int] = {}
        due_ms, replayed = 0, False
        sealed: list[str] = []  # recipients of parts a reshard sealed between their stage and their commit
        generation, runs = 0, []
        for members, reply in zip(groups.values(), staged, strict=True):
            ids, due_ms, replayed = reply.ids, reply.due_ms, replayed or reply.code == "replayed" or reply.resumed
            if reply.code == "staged":
                done = next(committed)
                if done.code == "moved":
                    sealed += members
                    generation = done.generation
                    continue
                if done.code == "missing":
                    raise UnavailableError(
                        f"part of this schedule call expired before it was committed (after {self.stage_ttl_ms} ms);"
                        " nothing of that part is visible: run the call again (with its idempotency key to keep"
                        " the ids of the parts already committed)"
                    )
                replayed = replayed or done.code == "replayed"
            ids_of.update(zip(members, ids, strict=True))
            runs.append((ids[0], len(ids)))
        if sealed:  # the parts committed stay; the sealed ones' recipients go to the new generation
            raise ScheduleMoved(generation, ids_of, runs)
        ids = [ids_of[person] for person in people]
        return ScheduleResult(
            notification_ids=ids,
            count=len(ids),
            scheduled_at=ms_to_datetime(due_ms),
            replayed=replayed,
            batch_id=validation.batch_of((r.ids[0], len(r.ids)) for r in staged),
        )

    def _answered_before_reshard(self, people: list[str], key: str, fingerprint: str) -> Op[ScheduleResult | None]:
        """The answer a call with this idempotency key got in the previous generation, when a reshard opened the
        current one less than the key's lifetime ago (a resend of a call made before the seal, by a process that
        now knows the new generation, must not create it twice); None when there is none to replay."""
        previous, current = self.keys.generations[-2:]
        if self.rough_now_ms() - current.opened_ms > self.idempotency_ttl_ms:
            return None
        groups: dict[Partition, list[str]] = {}
        for person in people:
            groups.setdefault(previous.for_recipient(person), []).append(person)
        replies = yield [Command(("GET", p.idempotency(key))) for p in groups]
        ids_of: dict[str, int] = {}
        due_ms = 0
        for members, raw in zip(groups.values(), replies, strict=True):
            if raw is None:
                continue
            answer = msgspec.json.decode(raw)
            if answer.get("fingerprint") != fingerprint:
                raise IdempotencyConflictError(key)
            ids_of.update(zip(members, (int(i) for i in answer["ids"]), strict=True))
            due_ms = int(answer["due"])
        if len(ids_of) < len(people):  # not (all) answered there: this call is scheduled here
            return None
        ids = [ids_of[person] for person in people]
        parts: dict[Partition, list[int]] = {}
        for i in ids:
            parts.setdefault(self.keys.for_id(i), []).append(i)
        return ScheduleResult(
            notification_ids=ids,
            count=len(ids),
            scheduled_at=ms_to_datetime(due_ms),
            replayed=True,
            batch_id=validation.batch_of((min(part), len(part)) for part in parts.values()),  # as first answered
        )

    @staticmethod
    def _collapse_keys(p: Partition) -> list[str]:
        """The KEYS schedule.lua and commit_schedule.lua take to collapse (see their headers), in their order."""
        return [p.collapse, p.collapsed, *p.due_for_each, *p.call_keys[:4], p.pending_by_creator]

    def cancel(self, notification_id: int | str) -> Op[Notification]:
        """Cancel a pending notification; NotFoundError or NotPendingError otherwise."""
        notification_id = validation.notification_id(notification_id)
        (reply,) = yield [self.cancel_step(notification_id)]
        refusal = ChangeReply.read(reply).refusal("cancelled", "cancel", notification_id)
        if refusal is not None:
            again = (yield from self.relocated(notification_id)) if refusal.code == "missing" else None
            if again is not None:  # re-issued, or routed anew, after a reshard
                return (yield from self.cancel(again))
            raise refusal_error(refusal)
        return (yield from self.status(notification_id))

    def cancel_step(self, notification_id: int) -> Script:
        """The script step that cancels one pending notification (its reply: ``ChangeReply``)."""
        p = self.keys.for_id(notification_id)
        return Script(
            "cancel",
            [
                p.due,
                p.state,
                p.cancelled,
                p.counters,
                p.pending_by_creator,
                *p.other_dues,
                *p.call_lookup_keys,
                self.op_key(p),
                p.moving,
            ],
            [self.now_arg(), self.retention.cancelled_ms, notification_id, self.op_ttl_ms, p.count],
        )

    def reschedule(
        self, notification_id: int | str, *, at: datetime | None = None, delay: timedelta | float | None = None
    ) -> Op[Notification]:
        """Move a pending notification to a new due time."""
        notification_id = validation.notification_id(notification_id)
        at_ms, delay_ms = validation.due(at, delay, self.rough_now_ms())
        p = self.keys.for_id(notification_id)
        (reply,) = yield [
            Script(
                "reschedule",
                [p.due, p.state, *p.other_dues, *p.call_lookup_keys, self.op_key(p), p.moving],
                [
                    self.now_arg(),
                    notification_id,
                    "" if at_ms is None else at_ms,
                    delay_ms,
                    p.wakeup,
                    self.op_ttl_ms,
                    p.count,
                ],
            )
        ]
        refusal = ChangeReply.read(reply).refusal("rescheduled", "reschedule", notification_id)
        if refusal is not None:
            again = (yield from self.relocated(notification_id)) if refusal.code == "missing" else None
            if again is not None:  # re-issued, or routed anew, after a reshard
                return (yield from self.reschedule(again, at=at, delay=delay))
            raise refusal_error(refusal)
        return (yield from self.status(notification_id))


def _part(text: str) -> tuple[int, int]:
    """One ``<first>x<count>`` part of a batch id."""
    first, _, count = text.partition("x")
    return int(first), int(count)


def requeue_dead(
    core: CoreBase, ids: Sequence[int | str] = (), *, everything: bool = False, batch: int = 1000
) -> Op[list[int]]:
    """Make dead letters due now with fresh attempts: the given ``ids``, or all of them with ``everything``.

    Returns the requeued ids; an id that is not a dead letter is left out of the answer.
    """
    if bool(ids) == everything:
        raise FieldError("give notification ids, or everything=True, but not both", "ids")
    numbers = [validation.notification_id(i, f"ids[{n}]") for n, i in enumerate(ids)]
    requeued: list[int] = []
    if numbers:
        groups: dict[int, list[int]] = {}
        for i in numbers:
            groups.setdefault(core.keys.for_id(i).index, []).append(i)
        steps: list[Step] = [_requeue(core, index, members, batch) for index, members in groups.items()]
        replies = yield steps
        for reply in replies:
            requeued += RequeueDeadReply.read(reply).ids
        return requeued
    for p in core.keys.partitions:
        while True:
            (reply,) = yield [_requeue(core, p.index, [], batch)]
            ids_now = RequeueDeadReply.read(reply).ids
            requeued += ids_now
            if len(ids_now) < batch:
                break
    return requeued


def _requeue(core: CoreBase, index: int, ids: Sequence[int], batch: int) -> Script:
    p = core.keys.partitions[index]
    return Script(
        "requeue_dead",
        [p.due, p.failed, p.state, p.counters, p.pending_by_creator, *p.other_dues, core.op_key(p)],
        [core.now_arg(), p.wakeup, batch, core.op_ttl_ms, *ids],
    )
