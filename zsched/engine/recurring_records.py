"""How a recurring schedule is stored and read back: its definition (written once), its state (the scripts'), and
the ``RecurringSchedule`` a caller sees."""

from __future__ import annotations

import msgspec

from ..models import Payload, RecurringSchedule, ms_to_datetime
from .recurrence import Rule


class Definition(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a recurring schedule stores once, when created: never changed afterwards."""

    rule: Rule
    catch_up: str = "skip"
    max_count: int | None = None
    recipients: list[str]
    payload: Payload
    created_at: int


class State(msgspec.Struct, frozen=True):
    """A schedule's state as the scripts keep it: ``"<status> <next_ms> <count> <first_id>"``."""

    status: str
    next_ms: int
    count: int
    first_id: int

    @classmethod
    def parse(cls, raw: bytes | str) -> State:
        """The state from its stored text."""
        status, next_ms, count, first_id = (raw.decode() if isinstance(raw, bytes) else raw).split()
        return cls(status, int(next_ms), int(count), int(first_id))


_definition_decoder = msgspec.json.Decoder(Definition)


def decode_definition(raw: bytes | str) -> Definition:
    """A stored definition; raises ``msgspec.DecodeError`` when it is not one."""
    return _definition_decoder.decode(raw)


def view(sid: int, d: Definition, state: State, partitions: int) -> RecurringSchedule:
    """What a caller sees of schedule ``sid``: its definition and its state (ids follow from ``partitions``)."""
    body, rule = d.payload, d.rule
    occurrence = [state.first_id + i * partitions for i in range(len(d.recipients))] if state.count else []
    return RecurringSchedule(
        id=sid,
        status=state.status,  # type: ignore[arg-type]
        cron=rule.cron,
        every_s=None if rule.every_ms is None else rule.every_ms / 1000,
        timezone=rule.zone,
        start_at=ms_to_datetime(rule.start_ms),
        end_at=None if rule.end_ms is None else ms_to_datetime(rule.end_ms),
        max_count=d.max_count,
        catch_up=d.catch_up,
        count=state.count,
        next_at=ms_to_datetime(state.next_ms) if state.count else None,
        occurrence_ids=occurrence,
        recipients=d.recipients,
        title=body.title,
        message=body.message,
        type=body.type,
        priority=body.priority,
        data=body.data,
        channels=body.channels,
        created_by=body.created_by,
        created_at=ms_to_datetime(d.created_at),
    )
