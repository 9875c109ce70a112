"""How stored records read back: a notification from its state and payload hashes, reply text."""

from __future__ import annotations

from ..models import Notification, Payload, State, payload_decoder, state_decoder


def notification(notification_id: int, state: bytes | str, payload: bytes | str) -> Notification:
    """The notification whose stored state and payload these are."""
    st: State = state_decoder.decode(state)
    body: Payload = payload_decoder.decode(payload)
    return Notification.from_stored(notification_id, st, body)


def text(value: bytes | str) -> str:
    """A reply value as text (connections may or may not decode replies)."""
    return value.decode() if isinstance(value, bytes) else value
