"""Whole-call operations: a schedule call's notifications, named by its ``batch_id``, cancelled, rescheduled or
summed up in one request.

A batch id names each partition's part of the call (its first id and how many; the ids are ``first + i *
partitions``), so nothing is stored per batch. Each partition's part changes in one script call; a call spanning
partitions is one script call per partition, each atomic on its own. Each is a generator of Redis steps (see
``steps``); nothing here does I/O of its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..errors import Refusal, refusal_error
from ..models import STATUSES, BatchChange, BatchSummary
from . import records, validation
from .base import CoreBase
from .replies import BatchReply, ReadReply
from .steps import Op, Script, Step
from .views import read_records

READ_SLICE = 1000
"""How many ids one read step of a batch summary reads."""


class BatchOps(CoreBase):
    """Cancel, reschedule and sum up the notifications of one schedule call."""

    def _parts(self, batch_id: str) -> list[tuple[int, int]]:
        """The parts of a batch of the current generation (one from before a reshard is refused)."""
        return validation.current_batch_id(batch_id, len(self.keys.partitions), self.keys.generations[-1].id_base)

    def cancel_batch(self, batch_id: str, *, only_for: str | None = None) -> Op[BatchChange]:
        """Cancel every notification of the call still pending; ``only_for`` limits it to those that user
        created or receives (what the HTTP API lets a non-admin change)."""
        steps: list[Step] = []
        for first, count in self._parts(batch_id):
            p = self.keys.for_id(first)
            steps.append(
                Script(
                    "cancel_batch",
                    [
                        p.due,
                        p.state,
                        p.cancelled,
                        p.counters,
                        p.pending_by_creator,
                        *p.other_dues,
                        *p.call_lookup_keys,
                        self.op_key(p),
                    ],
                    [
                        self.now_arg(),
                        self.retention.cancelled_ms,
                        first,
                        count,
                        len(self.keys.partitions),
                        self.op_ttl_ms,
                        only_for or "",
                    ],
                )
            )
        replies = [BatchReply.read(raw) for raw in (yield steps)]
        return _sum(batch_id, replies)

    def reschedule_batch(
        self,
        batch_id: str,
        *,
        at: datetime | None = None,
        delay: timedelta | float | None = None,
        only_for: str | None = None,
    ) -> Op[BatchChange]:
        """Move every notification of the call still pending to one new due time (``at`` or ``delay``, as
        ``reschedule``); ``only_for`` as in ``cancel_batch``."""
        parts = self._parts(batch_id)
        at_ms, delay_ms = validation.due(at, delay, self.rough_now_ms())
        steps: list[Step] = []
        for first, count in parts:
            p = self.keys.for_id(first)
            steps.append(
                Script(
                    "reschedule_batch",
                    [
                        *[p.due, p.state, *p.other_dues, p.calls, p.call_recipients, p.call_pending],
                        *[p.by_recipient, self.op_key(p)],
                    ],
                    [
                        self.now_arg(),
                        first,
                        count,
                        len(self.keys.partitions),
                        "" if at_ms is None else at_ms,
                        delay_ms,
                        p.wakeup,
                        self.op_ttl_ms,
                        only_for or "",
                    ],
                )
            )
        replies = [BatchReply.read(raw) for raw in (yield steps)]
        past = next((r for r in replies if r.code == "past"), None)
        if past is not None:  # every part checks the same time against the same clock: none moved
            raise refusal_error(Refusal("past", "reschedule", parts[0][0], "", past.due_ms, past.now_ms))
        return _sum(batch_id, replies)

    def batch_status(self, batch_id: str, *, only_for: str | None = None) -> Op[BatchSummary]:
        """How many of the call's notifications are in each status; ``only_for`` counts only those that user
        created or receives."""
        count = len(self.keys.partitions)
        ids = [first + i * count for first, n in self._parts(batch_id) for i in range(n)]
        counts = dict.fromkeys(STATUSES, 0)
        for start in range(0, len(ids), READ_SLICE):
            chunk = ids[start : start + READ_SLICE]
            by_partition: dict[int, list[int]] = {}
            for i in chunk:
                by_partition.setdefault(i % count, []).append(i)
            steps: list[Step] = [read_records(self.keys.partitions[k], count, v) for k, v in by_partition.items()]
            for part, raw in zip(by_partition.values(), (yield steps), strict=True):
                for i, (state, payload) in zip(part, ReadReply.read(raw).records, strict=True):
                    if state is None or payload is None:
                        continue
                    note = records.notification(i, state, payload)
                    if only_for is None or only_for in (note.created_by, note.recipient):
                        counts[note.scheduled_status] += 1
        return BatchSummary(batch_id=batch_id, count=sum(counts.values()), counts=counts)


def _sum(batch_id: str, replies: list[BatchReply]) -> BatchChange:
    return BatchChange(
        batch_id=batch_id,
        changed=sum(r.changed for r in replies),
        not_pending=sum(r.not_pending for r in replies),
        missing=sum(r.missing for r in replies),
    )
