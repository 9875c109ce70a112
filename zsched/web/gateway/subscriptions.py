"""The gateway's one Redis pub/sub connection, carrying the channel of every user with an open socket.

A user's channel is subscribed when their first socket joins and unsubscribed when their last one
leaves; a join waits for the server's confirmation, since a PUBLISH reaches us only after it. When the
connection is lost, or redis-py reconnects it on its own, what was published meanwhile is lost to
pub/sub: ``on_lost`` is told, so the gateway can close its sockets and let them resume from the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec
import redis
import redis.asyncio as aioredis

from . import messages
from .socket import Socket, parse_stream_id

log = logging.getLogger("zsched.gateway")


class _Stamped(msgspec.Struct):
    stream_id: str


_stamped = msgspec.json.Decoder(_Stamped)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Subscriptions:
    """Joins sockets to their user's channel and hands each published message to the channel's sockets."""

    def __init__(
        self,
        connection: aioredis.Redis,
        control: str,
        on_lost: Callable[[str], None],
        *,
        subscribe_timeout_s: float = 5.0,
    ) -> None:
        self.redis = connection
        self._control = control
        self._on_lost = on_lost
        self.subscribe_timeout_s = subscribe_timeout_s
        self._control_seen = False
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._stopping = False
        self._subs: dict[str, set[Socket]] = {}
        self._ready: dict[str, asyncio.Future[None]] = {}
        self._confirms: dict[str, deque[asyncio.Future[None]]] = {}

    def __len__(self) -> int:
        return len(self._subs)

    async def start(self) -> None:
        """Open the pub/sub connection and start reading it."""
        self._stopping = False
        self._pubsub = self.redis.pubsub()
        await self._pubsub.subscribe(self._control)  # keeps the connection open and marks reconnects
        self._reader = asyncio.create_task(self._read(), name="zsched-gateway-pubsub")

    @property
    def reader(self) -> asyncio.Task[None] | None:
        """The task reading the connection (None before ``start``)."""
        return self._reader

    async def stop(self) -> None:
        """Stop reading and close the connection."""
        self._stopping = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()

    async def _read(self) -> None:
        backoff_s = 0.1
        while not self._stopping:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
                backoff_s = 0.1
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                log.warning(
                    "pub/sub connection lost (%s); closing sockets so they resume, retry in %.1f s", exc, backoff_s
                )
                self._drop_everyone("redis connection lost; reconnect with ?since=<last stream_id>")
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 5.0)
                continue
            if message is not None:
                try:
                    self._handle(message)
                except Exception:  # one odd message must not end the reader, and with it every live socket
                    log.exception("dropped a pub/sub message the gateway could not handle: %.200r", message)

    def _handle(self, message: dict[str, Any]) -> None:
        kind, channel = message["type"], _text(message["channel"])
        if kind == "message":
            text = _text(message["data"])
            clients = self._subs.get(channel)
            if clients and text.startswith(messages.UNREAD_HEAD):  # a mark changed the count: to those watching it
                unread = messages.decode_unread(text)
                at = parse_stream_id(unread.stream_id or "0-0")
                for client in list(clients):
                    if client.live and client.unread is not None:  # not live: its count is read when it goes live
                        client.set_unread(unread.count, at)
            elif clients:
                try:
                    stream_id = parse_stream_id(_stamped.decode(text).stream_id)
                except (msgspec.DecodeError, ValueError):
                    log.warning("dropped a message without a stream_id on %s: %.200s", channel, text)
                    return
                for client in list(clients):
                    client.offer(stream_id, text)
        elif kind == "subscribe" and channel == self._control:
            if self._control_seen:
                # redis-py reconnected and resubscribed on its own; what was published meanwhile is lost
                # to pub/sub, so every socket is closed and resumes from the inbox stream.
                self._drop_everyone("redis reconnected; reconnect with ?since=<last stream_id>")
            self._control_seen = True
        elif kind == "subscribe":
            waiting = self._confirms.get(channel)
            if waiting:
                future = waiting.popleft()
                if not waiting:
                    del self._confirms[channel]
                if not future.done():
                    future.set_result(None)

    def _drop_everyone(self, reason: str) -> None:
        self._on_lost(reason)
        for waiting in self._confirms.values():
            for future in waiting:
                if not future.done():
                    future.set_exception(ConnectionError(reason))
        self._confirms.clear()

    async def join(self, client: Socket) -> None:
        """Add the socket to its user's channel, subscribing first if it is the channel's first socket."""
        channel = client.channel
        clients = self._subs.get(channel)
        if clients is None:
            self._subs[channel] = {client}
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._ready[channel] = future
            self._confirms.setdefault(channel, deque()).append(future)
            await self._pubsub.subscribe(channel)
        else:
            clients.add(client)
            future = self._ready[channel]
        # PUBLISHes reach us only once the server has processed SUBSCRIBE: wait for its confirmation.
        await asyncio.wait_for(asyncio.shield(future), self.subscribe_timeout_s)

    async def leave(self, client: Socket) -> None:
        """Remove the socket from its channel, unsubscribing when it was the channel's last."""
        clients = self._subs.get(client.channel)
        if clients is None or client not in clients:
            return
        clients.discard(client)
        if not clients:
            del self._subs[client.channel]
            self._ready.pop(client.channel, None)
            with contextlib.suppress(Exception):  # a broken connection drops the subscription anyway
                await self._pubsub.unsubscribe(client.channel)
