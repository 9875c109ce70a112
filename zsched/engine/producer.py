"""Producer operations: schedule, cancel, reschedule, and requeue dead letters.

Each is a generator of Redis steps (see ``steps``); nothing here does I/O of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from ..errors import FieldError, refusal_error
from ..models import Notification, ScheduleResult, json_encoder, ms_to_datetime
from . import validation
from .base import CoreBase
from .replies import ChangeReply, RequeueDeadReply, ScheduleReply
from .steps import Op, Script, Step
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

        groups: dict[int, list[str]] = {}
        for person in people:
            groups.setdefault(self.keys.for_recipient(person).index, []).append(person)
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
                        *members,
                    ],
                )
            )
        replies = yield steps

        ids_of: dict[str, int] = {}
        due_ms, replayed = 0, False
        for members, raw in zip(groups.values(), replies, strict=True):
            reply = ScheduleReply.read(raw)
            refusal = reply.refusal(str(key))
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
                [p.due, p.state, p.cancelled, p.counters],
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
                [p.due, p.state],
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
    return Script("requeue_dead", [p.due, p.failed, p.state, p.counters], [core.now_arg(), p.wakeup, batch, *ids])
