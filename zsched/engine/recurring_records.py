"""How a recurring schedule is stored and read back: one hash field per schedule holding its state (the scripts'),
its definition (written once) and its occurrences' payload, and the ``RecurringSchedule`` a caller sees.

The record is compact on purpose (about 100 bytes beside the payload): a schedule costs its record and its
``recurring_due`` entry, and 100,000 of them are meant to fit in 400 bytes each (``bench``'s R1)."""

from __future__ import annotations

import msgspec

from ..models import Payload, RecurringSchedule, json_encoder, ms_to_datetime
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
    """A schedule's state as the scripts keep it, at the head of its record: ``"<status> <next_ms> <count>
    <first_id>"``."""

    status: str
    next_ms: int
    count: int
    first_id: int

    @classmethod
    def parse(cls, raw: bytes | str) -> State:
        """The state from its stored text (a whole record, or its state alone)."""
        status, next_ms, count, first_id = (raw.decode() if isinstance(raw, bytes) else raw).split(" ", 4)[:4]
        return cls(status, int(next_ms), int(count), int(first_id))


class Stored(msgspec.Struct, array_like=True, frozen=True):
    """A definition as its record keeps it: a JSON array, trailing defaults left out, the payload apart."""

    start_ms: int
    recipients: str | list[str]  # one recipient: the id alone
    rule: str | int  # the cron expression, or the interval in ms
    zone: str = "UTC"
    catch_up: str = "skip"
    max_count: int | None = None
    end_ms: int | None = None
    created_ago_ms: int = 0  # start_ms - created_at: 0 when the start was left to default (now)


_STORED_DEFAULTS: tuple[object, ...] = ("UTC", "skip", None, None, 0)


class Record(msgspec.Struct, frozen=True):
    """One stored schedule: its definition, its state, and its payload exactly as its occurrences carry it."""

    definition: Definition
    state: State
    payload_json: bytes


_stored_decoder = msgspec.json.Decoder(Stored)
_payload_decoder = msgspec.json.Decoder(Payload)


def encode_definition(d: Definition, payload_json: bytes) -> bytes:
    """What follows the state in a new record: the definition array, a newline, the payload JSON (JSON never
    holds a raw newline, so the first one splits them)."""
    r = d.rule
    rule: str | int = r.cron if r.cron is not None else r.every_ms or 0
    who: str | list[str] = d.recipients[0] if len(d.recipients) == 1 else d.recipients
    fields: list[object] = [r.start_ms, who, rule, r.zone, d.catch_up, d.max_count, r.end_ms, r.start_ms - d.created_at]
    while len(fields) > 3 and fields[-1] == _STORED_DEFAULTS[len(fields) - 4]:
        fields.pop()
    return json_encoder.encode(fields) + b"\n" + payload_json


def decode_record(raw: bytes | str) -> Record:
    """A stored record; raises one of ``records.UNDECODABLE`` when it is not one."""
    data = raw.encode() if isinstance(raw, str) else raw
    head, sep, payload_json = data.partition(b"\n")
    parts = head.split(b" ", 4)
    if not sep or len(parts) != 5:
        raise ValueError(f"not a recurring schedule record: {data[:60]!r}")
    state = State.parse(b" ".join(parts[:4]))
    s = _stored_decoder.decode(parts[4])
    cron, every_ms = (s.rule, None) if isinstance(s.rule, str) else (None, s.rule)
    rule = Rule(start_ms=s.start_ms, zone=s.zone, cron=cron, every_ms=every_ms, end_ms=s.end_ms)
    definition = Definition(
        rule=rule,
        catch_up=s.catch_up,
        max_count=s.max_count,
        recipients=[s.recipients] if isinstance(s.recipients, str) else s.recipients,
        payload=_payload_decoder.decode(payload_json),
        created_at=s.start_ms - s.created_ago_ms,
    )
    return Record(definition, state, payload_json)


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
