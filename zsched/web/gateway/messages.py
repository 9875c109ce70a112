"""The gateway's wire format: every message a client may send and every message the server builds, as
msgspec Structs tagged by ``type``, with one decoder and one encoder built here.

    client -> {"type": "ack", "id": 7}  or  {"type": "ack", "ids": [7, 8]}
    client -> {"type": "ping"}  |  {"type": "pong"}
    server -> {"type": "truncated", "oldest_stream_id", "after"}   (before the backlog it concerns)
    server -> {"type": "ready", "user", "replayed", "stream_id", "truncated", "oldest_stream_id"}
    server -> {"type": "acked", "id", "delivered_at"}
    server -> {"type": "error", "error"}  |  {"type": "ping"}  |  {"type": "pong"}

Notifications themselves are not built here: the worker stores them as JSON in the inbox stream and
publishes the same text, which the gateway forwards with ``stream_id`` spliced in (``socket.stamp``).
"""

from __future__ import annotations

from datetime import datetime

import msgspec


class Ack(msgspec.Struct, tag="ack"):
    """The client received notification ``id`` (or each of ``ids``): records ``delivered_at``."""

    id: int | None = None
    ids: list[int] = []

    def all_ids(self) -> list[int]:
        """``id`` and ``ids`` as one list, in the order sent."""
        return ([self.id] if self.id is not None else []) + self.ids


class Ping(msgspec.Struct, tag="ping"):
    """A heartbeat, in either direction; answered with a ``Pong``."""


class Pong(msgspec.Struct, tag="pong"):
    """The answer to a ``Ping``, in either direction."""


class Truncated(msgspec.Struct, tag="truncated"):
    """The inbox no longer holds everything after ``after`` (the client's position; None: the start): entries
    were trimmed by the cap or by age. What follows starts at ``oldest_stream_id`` (None: the inbox is gone)."""

    oldest_stream_id: str | None
    after: str | None = None


class Ready(msgspec.Struct, tag="ready", omit_defaults=True):
    """The backlog is sent (``replayed`` notifications, the last at ``stream_id``); live messages follow.
    When the replay sent a ``Truncated`` message, ``truncated`` is true and ``oldest_stream_id`` repeats its
    oldest id (both are left out otherwise, so the message keeps its 0.1 bytes)."""

    user: str
    replayed: int
    stream_id: str | None
    truncated: bool = False
    oldest_stream_id: str | None = None


class Acked(msgspec.Struct, tag="acked"):
    """Notification ``id`` is recorded as delivered at ``delivered_at`` (the first ack's time)."""

    id: int
    delivered_at: datetime


class Error(msgspec.Struct, tag="error"):
    """A client message was not understood or not allowed; the socket stays open."""

    error: str


ClientMessage = Ack | Ping | Pong
ServerMessage = Truncated | Ready | Acked | Error | Ping | Pong

CLIENT_EXAMPLE = '{"type": "ack", "id": 1}'
_decoder = msgspec.json.Decoder(ClientMessage)
_encoder = msgspec.json.Encoder()


def decode(text: str | bytes) -> ClientMessage:
    """A client message; raises ``msgspec.DecodeError`` (``ValidationError`` names the field) if it is not one."""
    return _decoder.decode(text)


def encode(message: ServerMessage) -> str:
    """A server message as the text frame sent."""
    return _encoder.encode(message).decode()


PING = encode(Ping())
PONG = encode(Pong())
