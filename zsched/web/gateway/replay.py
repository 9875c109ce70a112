"""The backlog sent when a socket connects, from the recipient's inbox stream: everything after ``?since=``,
or (without it) the recent entries not yet acked. It is sent straight to the socket, each message within
``send_timeout_s``: a client that stops reading is closed (1013) rather than holding its handler."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import msgspec
import redis.asyncio as aioredis

from ...engine.keys import Keyspace
from ...models import state_decoder
from .socket import CLOSE_TRY_AGAIN, Socket, parse_stream_id, stamp

STREAM_ID = re.compile(r"\d{1,20}(-\d{1,20})?")
"""What ``?since=`` must look like: a stream id (``1700000000000-0``), or ``0`` for the whole inbox."""
PAGE = 200


class _Identified(msgspec.Struct):
    id: int


_identified = msgspec.json.Decoder(_Identified)


async def replay(
    connection: aioredis.Redis, keys: Keyspace, client: Socket, since: str | None, limit: int, send_timeout_s: float
) -> int:
    """Send the backlog straight to the socket; returns how many were sent. A send that takes longer than
    ``send_timeout_s`` closes the socket (1013) and raises ``TimeoutError``."""
    p = keys.for_recipient(client.user)
    inbox = p.inbox(client.user)
    sent = 0
    if since is not None:
        start = "-" if since == "0" else "(" + since
        while True:
            entries = _entries(await connection.xrange(inbox, start, "+", count=PAGE))
            for stream_id, body in entries:
                await _send_entry(client, stream_id, body, send_timeout_s)
            sent += len(entries)
            if len(entries) < PAGE:
                return sent
            start = "(" + entries[-1][0]
    entries = _entries(await connection.xrevrange(inbox, "+", "-", count=limit))[::-1]
    if not entries:
        return 0
    states = await connection.hmget(p.state, [_identified.decode(body).id for _, body in entries])
    for (stream_id, body), state in zip(entries, states, strict=True):
        if state is not None and state_decoder.decode(state).delivered_at is None:
            await _send_entry(client, stream_id, body, send_timeout_s)
            sent += 1
    client.last = max(client.last, parse_stream_id(entries[-1][0]))
    return sent


async def _send_entry(client: Socket, stream_id: str, body: str, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(client.websocket.send_text(stamp(stream_id, body)), timeout_s)
    except TimeoutError:
        client.close(CLOSE_TRY_AGAIN, f"the backlog was not read within {timeout_s:g} s; reconnect with since")
        raise
    client.last = parse_stream_id(stream_id)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entries(reply: Any) -> list[tuple[str, str]]:
    """XRANGE/XREVRANGE entries as (stream id, message JSON), skipping any without the ``n`` field."""
    found: list[tuple[str, str]] = []
    for stream_id, fields in reply or ():
        body = fields.get(b"n", fields.get("n")) if fields else None
        if body is not None:
            found.append((_text(stream_id), _text(body)))
    return found
