"""The backlog sent when a socket connects, from the recipient's inbox stream: everything after ``?since=``,
or (without it) every entry not yet acked. It is read ``page`` entries at a time and sent straight to the
socket, each message within ``send_timeout_s``: a client that stops reading is closed (1013) rather than
holding its handler.

Gaps are said, never skipped silently. Each inbox entry records the id of the entry appended before it
(``publish_inbox.lua``), so when the first entry after the client's position names an earlier entry that
is no longer there, that entry was trimmed (by the cap or by age): a ``truncated`` message, with the oldest
id still available, is sent before anything after the gap."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import msgspec
import redis.asyncio as aioredis

from ...engine.keys import Keyspace
from ...models import state_decoder
from . import messages
from .socket import CLOSE_TRY_AGAIN, Socket, StreamId, parse_stream_id, stamp

STREAM_ID = re.compile(r"\d{1,20}(-\d{1,20})?")
"""What ``?since=`` must look like: a stream id (``1700000000000-0``), or ``0`` for the whole inbox."""
PAGE = 200
"""Inbox entries read at once by default: a replay holds one page in memory, never the whole inbox."""
_START: StreamId = (0, 0)


class Backlog(msgspec.Struct):
    """What a replay did: how many notifications it sent; whether the inbox had dropped entries after the
    client's position, and then the oldest id it still had (None: the inbox itself is gone)."""

    sent: int = 0
    truncated: bool = False
    oldest_stream_id: str | None = None


class _Identified(msgspec.Struct):
    id: int


_identified = msgspec.json.Decoder(_Identified)


class _Entry(msgspec.Struct, frozen=True):
    """One inbox entry: its id, the notification JSON, and the id of the entry appended before it."""

    stream_id: str
    body: str
    prev: StreamId | None  # None: written before entries named their predecessor


async def replay(
    connection: aioredis.Redis, keys: Keyspace, client: Socket, since: str | None, page: int, send_timeout_s: float
) -> Backlog:
    """Send the backlog straight to the socket, ``page`` entries at a time. A send that takes longer than
    ``send_timeout_s`` closes the socket (1013) and raises ``TimeoutError``."""
    p = keys.for_recipient(client.user)
    inbox = p.inbox(client.user)
    unacked_only = since is None
    cursor = _START if since is None or since == "0" else parse_stream_id(since)
    start = "-" if cursor == _START else f"({cursor[0]}-{cursor[1]}"
    backlog = Backlog()
    first = True
    while True:
        entries = _entries(await connection.xrange(inbox, start, "+", count=page))
        gone = first and not entries and cursor != _START and not await connection.exists(inbox)
        if gone or (entries and _dropped_after(cursor, entries[0].prev)):
            # something after the client's position was trimmed (or the whole inbox expired): say so first
            backlog.truncated = True
            backlog.oldest_stream_id = entries[0].stream_id if entries else None
            after = None if cursor == _START else f"{cursor[0]}-{cursor[1]}"
            truncated = messages.Truncated(oldest_stream_id=backlog.oldest_stream_id, after=after)
            await _send(client, messages.encode(truncated), send_timeout_s)
        first = False
        if not entries:
            return backlog
        send = entries
        if unacked_only:
            states = await connection.hmget(p.state, [_identified.decode(e.body).id for e in entries])
            send = [
                e for e, s in zip(entries, states, strict=True) if s and state_decoder.decode(s).delivered_at is None
            ]
        for entry in send:
            await _send(client, stamp(entry.stream_id, entry.body), send_timeout_s)
            client.last = parse_stream_id(entry.stream_id)
        backlog.sent += len(send)
        cursor = parse_stream_id(entries[-1].stream_id)
        # live messages at or before the last entry read were read here (sent, or acked already)
        client.last = max(client.last, cursor)
        if len(entries) < page:
            return backlog
        start = "(" + entries[-1].stream_id


async def catch_up(connection: aioredis.Redis, keys: Keyspace, client: Socket, page: int) -> bool:
    """Queue what the inbox holds after the last message the socket was given (live messages published while the
    gateway's pub/sub connection was down); False when the inbox trimmed some of it, which only a reconnect with
    ``since`` can say (a ``truncated`` message). Live messages are held meanwhile, then sent minus duplicates."""
    client.live = False
    p = keys.for_recipient(client.user)
    inbox = p.inbox(client.user)
    start = "-" if client.last == _START else f"({client.last[0]}-{client.last[1]}"
    while True:
        entries = _entries(await connection.xrange(inbox, start, "+", count=page))
        if entries and _dropped_after(client.last, entries[0].prev):
            return False
        for entry in entries:
            stream_id = parse_stream_id(entry.stream_id)
            if stream_id > client.last:  # a second blip's catch-up may have queued it already
                client.last = stream_id
                client.push(stamp(entry.stream_id, entry.body))
        if len(entries) < page:
            client.go_live()
            return True
        start = "(" + entries[-1].stream_id


def _dropped_after(cursor: StreamId, prev: StreamId | None) -> bool:
    """Whether the first entry after ``cursor`` shows a trimmed gap: the entry before it is after ``cursor``
    (so it was there and is gone), or it opened a new stream while the client names an older one's entry
    (the inbox expired and was recreated: what it held after ``cursor`` cannot be vouched for). An entry
    that does not name its predecessor claims nothing."""
    if prev is None:
        return False
    return prev > cursor or (prev == _START and cursor != _START)


async def _send(client: Socket, text: str, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(client.websocket.send_text(text), timeout_s)
    except TimeoutError:
        client.close(CLOSE_TRY_AGAIN, f"the backlog was not read within {timeout_s:g} s; reconnect with since")
        raise


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entries(reply: Any) -> list[_Entry]:
    """XRANGE entries, skipping any without the ``n`` field."""
    found: list[_Entry] = []
    for stream_id, fields in reply or ():
        body = fields.get(b"n", fields.get("n")) if fields else None
        if body is not None:
            prev = fields.get(b"p", fields.get("p"))
            found.append(_Entry(_text(stream_id), _text(body), None if prev is None else parse_stream_id(_text(prev))))
    return found
