"""The gateway's wire format: every message a client may send and every message the server builds, as
msgspec Structs tagged by ``type``, with one decoder and one encoder built here.

    client -> {"type": "ack", "id": 7}  or  {"type": "ack", "ids": [7, 8]}
    client -> {"type": "read", "id": 7}  or  {"type": "read", "ids": [7, 8]}  |  {"type": "read_all"}
    client -> {"type": "ping"}  |  {"type": "pong"}
    server -> {"type": "truncated", "oldest_stream_id", "after"}   (before the backlog it concerns)
    server -> {"type": "ready", "user", "replayed", "stream_id", "truncated", "oldest_stream_id"}
    server -> {"type": "acked", "id", "delivered_at"}
    server -> {"type": "marked", "read_at": {id: time}, "unread"}   (the answer to read / read_all)
    server -> {"type": "unread", "count", "stream_id"}   (with ?unread=1: after ready, then at each change)
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


class Read(msgspec.Struct, tag="read"):
    """The recipient read notification ``id`` (or each of ``ids``): records ``read_at``."""

    id: int | None = None
    ids: list[int] = []

    def all_ids(self) -> list[int]:
        """``id`` and ``ids`` as one list, in the order sent."""
        return ([self.id] if self.id is not None else []) + self.ids


class ReadAll(msgspec.Struct, tag="read_all"):
    """The recipient read everything in their inbox."""


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


class Marked(msgspec.Struct, tag="marked"):
    """The answer to ``read`` or ``read_all``: when each id named was read (the first mark's time; ids unknown,
    not the recipient's or not sent are left out), and the unread count of the inbox now."""

    read_at: dict[str, datetime]
    unread: int


class Unread(msgspec.Struct, tag="unread"):
    """How many notifications of the inbox are unread, counting every entry up to ``stream_id`` (the newest
    then). Sent to a socket opened with ``?unread=1`` after ``ready`` and whenever the count changes."""

    count: int
    stream_id: str | None = None


class Error(msgspec.Struct, tag="error"):
    """A client message was not understood or not allowed; the socket stays open."""

    error: str


ClientMessage = Ack | Read | ReadAll | Ping | Pong
ServerMessage = Truncated | Ready | Acked | Marked | Unread | Error | Ping | Pong

CLIENT_EXAMPLE = '{"type": "ack", "id": 1}'
_decoder = msgspec.json.Decoder(ClientMessage)
_encoder = msgspec.json.Encoder()
_unread = msgspec.json.Decoder(Unread)
UNREAD_HEAD = '{"type":"unread"'
"""How an unread count published on a recipient's channel (``mark_read.lua``) begins; notifications do not."""


def decode(text: str | bytes) -> ClientMessage:
    """A client message; raises ``msgspec.DecodeError`` (``ValidationError`` names the field) if it is not one."""
    return _decoder.decode(text)


def encode(message: ServerMessage) -> str:
    """A server message as the text frame sent."""
    return _encoder.encode(message).decode()


def decode_unread(text: str | bytes) -> Unread:
    """An unread count as ``mark_read.lua`` publishes it."""
    return _unread.decode(text)


PING = encode(Ping())
PONG = encode(Pong())
