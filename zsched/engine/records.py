"""How stored records read back: a notification from its state and payload hashes, reply text."""

from __future__ import annotations

from typing import Any

import msgspec

from ..models import Notification, Payload, State, payload_decoder, state_decoder

UNDECODABLE = (msgspec.DecodeError, ValueError, OverflowError, OSError)
"""What reading a corrupt record raises: not JSON, not its Struct, or a time no datetime can hold."""


def notification(notification_id: int, state: bytes | str, payload: bytes | str) -> Notification:
    """The notification whose stored state and payload these are; raises one of ``UNDECODABLE`` when they
    cannot be read as one."""
    st: State = state_decoder.decode(state)
    body: Payload = payload_decoder.decode(payload)
    return Notification.from_stored(notification_id, st, body)


def attempts(state: bytes | str) -> int:
    """The ``attempts`` of a state that may not decode as a ``State``; 0 when even that cannot be read."""
    try:
        got = msgspec.json.decode(state)
    except msgspec.DecodeError:
        return 0
    value = got.get("attempts") if isinstance(got, dict) else None
    return value if type(value) is int else 0


def text(value: bytes | str) -> str:
    """A reply value as text (connections may or may not decode replies)."""
    return value.decode() if isinstance(value, bytes) else value


def text_map(fields: Any) -> dict[str, str]:
    """A HGETALL reply as text: a dict (RESP3, or redis-py's parsing) or a flat field, value list."""
    if isinstance(fields, dict):
        return {text(k): text(v) for k, v in fields.items()}
    flat = list(fields or [])
    return {text(k): text(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}
