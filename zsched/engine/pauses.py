"""Pause and resume delivery, of everything or of one notification type (maintenance windows, incidents).

Each partition keeps its own ``paused`` hash, written to every partition: a claim reads its pause state in the
same script call, and a script may touch only its own partition's keys (one Redis Cluster slot), so one shared
``{meta}`` key could not be read there. A pause of everything makes claims take nothing; a paused type's due
notifications are taken aside (``parked``) by the claim that meets them, once each, and resume puts them back
at their own due times, so the backlog drains in due order with priorities first. Each operation is a generator
of Redis steps (see ``steps``); nothing here does I/O of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from ..models import Pauses, ms_to_datetime
from . import validation
from .base import CoreBase
from .keys import Partition
from .replies import PauseReply, ResumeReply
from .steps import Command, Op, Script, Step

RESUME_BATCH = 1000
"""Most parked notifications one resume script call puts back, so no call blocks the server for long."""


class PauseOps(CoreBase):
    """Pause, resume, and read what is paused."""

    def pause(self, type: object = None) -> Op[Pauses]:
        """Stop delivering notifications of ``type`` (None: every notification) until ``resume``; schedules
        go on piling up. Pausing again what is paused changes nothing. Returns what is paused now."""
        scope = "*" if type is None else validation.notification_type(type)
        replies = yield [Script("pause", [p.paused], [self.now_arg(), scope]) for p in self.keys.partitions]
        for reply in replies:
            PauseReply.read(reply)
        return (yield from self.pauses())

    def resume(self, type: object = None) -> Op[Pauses]:
        """Lift the pause of ``type`` (None: every pause, of everything and of each type) and put what waits
        aside back into due, at its own due times; workers are woken. Returns what is still paused."""
        scope = "" if type is None else validation.notification_type(type)
        todo: list[Partition] = list(self.keys.partitions)
        rounds: int | None = None  # bounded: a claim may park again what a type still paused holds
        while todo and (rounds is None or rounds > 0):
            steps: list[Step] = [
                Script("resume", [p.paused, p.parked, *p.due_for_each], [scope, RESUME_BATCH, p.wakeup]) for p in todo
            ]
            got = [ResumeReply.read(reply) for reply in (yield steps)]
            if rounds is None:
                rounds = max((g.left for g in got), default=0) // RESUME_BATCH + 1
            rounds -= 1
            todo = [p for p, g in zip(todo, got, strict=True) if g.left > 0 and g.moved > 0]
        return (yield from self.pauses())

    def pauses(self) -> Op[Pauses]:
        """What is paused, over every partition (each holds the same pauses, unless a pause or resume was cut
        short: then a scope paused in any partition shows)."""
        steps: list[Step] = []
        for p in self.keys.partitions:
            steps += pause_steps(p)
        replies = iter((yield steps))
        return merge_pauses(read_pauses(replies) for _ in self.keys.partitions)


def pause_steps(p: Partition) -> list[Step]:
    """The commands that read one partition's pauses; ``read_pauses`` takes their replies in this order."""
    return [Command(("HGETALL", p.paused)), Command(("ZCARD", p.parked))]


def read_pauses(replies: Iterator[Any]) -> Pauses:
    """Consume the replies to ``pause_steps`` (in order) from ``replies``."""
    fields, parked = next(replies), next(replies)
    since = {_text(k): ms_to_datetime(int(v)) for k, v in fields.items()}
    return Pauses(all="*" in since, types=sorted(k for k in since if k != "*"), since=since, parked=int(parked or 0))


def merge_pauses(parts: Iterable[Pauses]) -> Pauses:
    """One view of several partitions' pauses: each scope at its earliest time, parked summed."""
    since: dict[str, datetime] = {}
    parked = 0
    for part in parts:
        for k, v in part.since.items():
            since[k] = min(since[k], v) if k in since else v
        parked += part.parked
    return Pauses(all="*" in since, types=sorted(k for k in since if k != "*"), since=since, parked=parked)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
