"""What a client sends on its socket, within its limits: text frames of at most ``max_frame_bytes`` (else
1009; binary frames 1003), at most ``messages_burst`` at once and ``messages_per_s`` a second (else 1008),
decoded as ``messages.ClientMessage``; an ack of at most ``max_ack_ids`` ids (else 1008) is one script call
per partition, so no ack can stall Redis for everyone; a read (of as many ids at most) is one script call."""

from __future__ import annotations

import time

import msgspec
import redis.asyncio as aioredis
from starlette.websockets import WebSocketDisconnect

from ...engine.keys import Keyspace, Partition
from ...engine.reads import mark_read_step, read_inbox_step
from ...engine.replies import MarkReadReply, ReadInboxReply
from ...engine.scripts import Scripts
from ...models import ms_to_datetime
from . import messages
from .socket import CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_UNSUPPORTED, Socket, TokenBucket, parse_stream_id


class Inbound:
    """Reads one socket's client messages until it closes or breaks a limit, and answers them."""

    def __init__(
        self,
        connection: aioredis.Redis,
        keyspace: Keyspace,
        *,
        max_frame_bytes: int = 64 * 1024,
        messages_per_s: float = 50.0,
        messages_burst: int = 1000,
        max_ack_ids: int = 1000,
    ) -> None:
        if max_frame_bytes < 1 or max_ack_ids < 1:
            raise ValueError(f"max_frame_bytes and max_ack_ids must be >= 1; got {max_frame_bytes}, {max_ack_ids}")
        self.redis = connection
        self.keys = keyspace
        self.max_frame_bytes = max_frame_bytes
        self.messages_per_s = messages_per_s
        self.messages_burst = messages_burst
        self.max_ack_ids = max_ack_ids
        self.budget()  # checks messages_per_s and messages_burst now, not at the first connect
        self._scripts = Scripts(connection)

    def budget(self) -> TokenBucket:
        """A fresh socket's budget of client messages."""
        return TokenBucket(self.messages_per_s, self.messages_burst)

    async def run(self, client: Socket) -> None:
        """Answer the client's messages until it leaves (``WebSocketDisconnect``) or is closed for a limit."""
        while (text := await self._receive(client)) is not None:
            try:
                message = messages.decode(text)
            except msgspec.DecodeError as exc:
                await client.reply(
                    _error(
                        f"expected a JSON object like {messages.CLIENT_EXAMPLE} (type ack, read, read_all, ping or "
                        f"pong); {exc}"
                    )
                )
                continue
            match message:
                case messages.Ack():
                    await self._ack(client, message.all_ids())
                case messages.Read():
                    await self._read(client, message.all_ids())
                case messages.ReadAll():
                    await self._read(client, None)
                case messages.Ping():
                    await client.reply(messages.PONG)
                case messages.Pong():
                    pass

    async def _receive(self, client: Socket) -> str | None:
        """The next text frame, or None when it broke a limit (the socket is then closing)."""
        frame = await client.websocket.receive()
        if frame["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(frame.get("code", 1000), frame.get("reason"))
        client.heard_at = time.monotonic()
        text: str | None = frame.get("text")
        if text is None:
            client.close(CLOSE_UNSUPPORTED, "binary frames are not supported; send JSON text frames")
            return None
        size = len(text) if text.isascii() else len(text.encode())
        if size > self.max_frame_bytes:
            client.close(CLOSE_TOO_BIG, f"message too big: {size} bytes; at most {self.max_frame_bytes}")
            return None
        if not client.budget.take():
            client.close(
                CLOSE_POLICY,
                f"too many messages (at most {self.messages_burst} at once, {self.messages_per_s:g} a second); "
                'ack several notifications at once with "ids"',
            )
            return None
        return text

    async def _ack(self, client: Socket, ids: list[int]) -> None:
        if not ids:
            await client.reply(_error('an ack needs "id" (or "ids"): the notification id(s) received'))
            return
        if len(ids) > self.max_ack_ids:  # one script call per ack: a huge one would stall Redis for everyone
            client.close(CLOSE_POLICY, f"an ack may name at most {self.max_ack_ids} ids; got {len(ids)}")
            return
        groups: dict[Partition, list[int]] = {}  # by partition: an id from before a reshard lives in an old one
        for notification_id in ids:
            groups.setdefault(self.keys.for_id(notification_id), []).append(notification_id)
        unknown: list[int] = []
        for p, members in groups.items():
            reply = await self._scripts["mark_delivered"](
                keys=[p.state], args=["", client.user, *members], client=self.redis
            )
            for notification_id, outcome in zip(members, reply[1:], strict=True):
                if int(outcome) < 0:
                    unknown.append(notification_id)
                else:
                    await client.reply(messages.encode(messages.Acked(notification_id, ms_to_datetime(int(outcome)))))
        if unknown:
            await client.reply(
                _error(
                    f"cannot ack notification(s) {', '.join(map(str, unknown))}: no such notification "
                    f"was delivered to {client.user}"
                )
            )

    async def watch_unread(self, client: Socket) -> None:
        """Send the inbox's unread count, and have the socket count on from the newest entry it covers."""
        step = read_inbox_step(self.keys, client.user)
        reply = await self._scripts[step.name](keys=step.keys, args=step.args, client=self.redis)
        got = ReadInboxReply.read(reply)
        client.set_unread(got.unread, parse_stream_id(got.newest or "0-0"))

    async def _read(self, client: Socket, ids: list[int] | None) -> None:
        """Mark ``ids`` read (None: the whole inbox): one script call, answered with ``marked``; the new unread
        count is published on the recipient's channel for every socket of theirs that watches it."""
        if ids is not None and not ids:
            await client.reply(_error('a read needs "id" (or "ids"): the notification id(s) read'))
            return
        if ids is not None and len(ids) > self.max_ack_ids:
            client.close(CLOSE_POLICY, f"a read may name at most {self.max_ack_ids} ids; got {len(ids)}")
            return
        wanted = None if ids is None else list(dict.fromkeys(ids))
        step = mark_read_step(self.keys, client.user, wanted)
        reply = MarkReadReply.read(await self._scripts[step.name](keys=step.keys, args=step.args, client=self.redis))
        read_at = {str(i): ms_to_datetime(at) for i, at in zip(wanted or (), reply.read_at, strict=True) if at >= 0}
        await client.reply(messages.encode(messages.Marked(read_at, reply.unread)))


def _error(text: str) -> str:
    return messages.encode(messages.Error(text))
