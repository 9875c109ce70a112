"""Producer operations: schedule, cancel, reschedule, and requeue dead letters.

Each is a generator of Redis steps (see ``steps``); nothing here does I/O of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from ..errors import CallTooLargeError, FieldError, PendingLimitError, refusal_error
from ..models import Notification, ScheduleResult, json_encoder, ms_to_datetime
from . import validation
from .base import CoreBase
from .replies import ChangeReply, RequeueDeadReply, ScheduleReply
from .steps import Command, Op, Script, Step
from .views import ReadViews


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
    ) -> Op[ScheduleResult]:
        """Create one pending notification per distinct recipient; all or nothing is validated first."""
        people = validation.recipients(recipients)
        creator = None if created_by is None else validation.user_id(created_by, "created_by")
        body = validation.payload(title, message, type, priority, data, creator, channels)
        at_ms, delay_ms = validation.due(at, delay, self.rough_now_ms())
        key = validation.idempotency_key(idempotency_key)
        payload_json = json_encoder.encode(body)
        fingerprint = (
            hashlib.sha256(json_encoder.encode([people, at_ms, delay_ms]) + payload_json).hexdigest() if key else ""
        )

        if self.max_call_bytes and len(payload_json) * len(people) > self.max_call_bytes:
            raise CallTooLargeError(len(payload_json), len(people), self.max_call_bytes)

        groups: dict[int, list[str]] = {}
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
        steps: list[Step] = []
        for index, members in groups.items():
            p = self.keys.partitions[index]
            steps.append(
                Script(
                    "schedule",
                    [
                        p.due,
                        p.notifications,
                        p.state,
                        p.by_recipient,
                        p.counters,
                        p.sequence,
                        p.idempotency(key or ""),
                        p.by_creator,
                        p.pending_by_creator,
                        *p.other_dues,
                    ],
                    [
                        self.now_arg(),
                        "" if at_ms is None else at_ms,
                        delay_ms,
                        len(self.keys.partitions),
                        index,
                        self.idempotency_ttl_ms if key else 0,
                        fingerprint,
                        p.wakeup,
                        payload_json.decode(),
                        creator or "",
                        cap,
                        total - held.get(index, 0) if cap else 0,
                        body.priority,
                        *members,
                    ],
                )
            )
        replies = yield steps

        ids_of: dict[str, int] = {}
        due_ms, replayed = 0, False
        for members, raw in zip(groups.values(), replies, strict=True):
            reply = ScheduleReply.read(raw)
            refusal = reply.refusal(str(key), str(creator), len(people))
            if refusal is not None:
                raise refusal_error(refusal)
            due_ms, replayed = reply.due_ms, reply.code == "replayed"
            ids_of.update(zip(members, reply.ids, strict=True))
        ids = [ids_of[person] for person in people]
        return ScheduleResult(
            notification_ids=ids, count=len(ids), scheduled_at=ms_to_datetime(due_ms), replayed=replayed
        )

    def cancel(self, notification_id: int | str) -> Op[Notification]:
        """Cancel a pending notification; NotFoundError or NotPendingError otherwise."""
        notification_id = validation.notification_id(notification_id)
        p = self.keys.for_id(notification_id)
        (reply,) = yield [
            Script(
                "cancel",
                [p.due, p.state, p.cancelled, p.counters, p.pending_by_creator, *p.other_dues],
                [self.now_arg(), self.retention.cancelled_ms, notification_id],
            )
        ]
        refusal = ChangeReply.read(reply).refusal("cancelled", "cancel", notification_id)
        if refusal is not None:
            raise refusal_error(refusal)
        return (yield from self.status(notification_id))

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
                [p.due, p.state, *p.other_dues],
                [self.now_arg(), notification_id, "" if at_ms is None else at_ms, delay_ms, p.wakeup],
            )
        ]
        refusal = ChangeReply.read(reply).refusal("rescheduled", "reschedule", notification_id)
        if refusal is not None:
            raise refusal_error(refusal)
        return (yield from self.status(notification_id))


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
        [p.due, p.failed, p.state, p.counters, p.pending_by_creator, *p.other_dues],
        [core.now_arg(), p.wakeup, batch, *ids],
    )
