"""The gateway's Redis pub/sub connections, carrying the channel of every user with an open socket.

A user's channel is subscribed when their first socket joins and unsubscribed when their last one
leaves; a join waits for the server's confirmation, since a message reaches us only after it.

On a single server one connection carries every channel with plain pub/sub (SUBSCRIBE). On a Redis Cluster
the workers publish with SPUBLISH, which stays on the shard owning the channel's slot, so the gateway holds
one connection per master that owns a channel it needs (SSUBSCRIBE there), each with its own reader.

When a connection is lost, what was published on it meanwhile is lost to pub/sub: ``on_lost`` is told which
channels (None: all). On a single server redis-py reconnects and resubscribes the one connection, and that is
when ``on_lost`` is told, so the gateway catches every socket up from its inbox and none is closed. On a cluster
a lost node connection is closed and forgotten, and only its channels are reported: their sockets join again,
which opens a new connection to whichever node then owns the slot (after a failover, the promoted replica),
and catch up; sockets on the other nodes' connections notice nothing.
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

from ...connection import is_cluster
from . import messages
from .socket import Socket, parse_stream_id

log = logging.getLogger("zsched.gateway")

CLOSE_S = 5.0
"""How long closing one pub/sub connection may take at shutdown before it is abandoned."""

LOST = (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError)
"""What ends a pub/sub connection's reading: the connection broke, or the server refused it (a node that
no longer owns a slot answers MOVED)."""

OnLost = Callable[[str, frozenset[str] | None], None]
"""Told why, and which channels lost messages (None: every channel)."""


class _Stamped(msgspec.Struct):
    stream_id: str


_stamped = msgspec.json.Decoder(_Stamped)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


_POOL_BOOKKEEPING = ("maint_notifications", "orig_", "himport_")
"""Connection options a redis-py pool adds for itself (RESP3 maintenance notifications and the like): not
copied into the reader's pool, which makes its own."""


def _reader_client(connection: aioredis.Redis) -> aioredis.Redis | None:
    """A client of its own for the single server's pub/sub connection, as ``connection``'s (same server,
    credentials, retries) but cheaper to read: RESP2, whose messages are plain replies (redis-py takes a RESP3
    push through more layers, and formats each one for a debug line even when that is off), and no read timeout,
    so a read waits without a timer per message (an idle channel is no error). None when this redis-py will not
    make one: the pub/sub connection then comes from ``connection``'s pool."""
    pool = connection.connection_pool
    options = {k: v for k, v in pool.connection_kwargs.items() if not k.startswith(_POOL_BOOKKEEPING)}
    options.update(protocol=2, socket_timeout=None)
    try:
        return aioredis.Redis.from_pool(aioredis.ConnectionPool(connection_class=pool.connection_class, **options))
    except (redis.RedisError, TypeError, ValueError) as exc:
        log.debug("gateway: pub/sub on the shared pool (%s)", exc)
        return None


class _Link:
    """One pub/sub connection: to the single server, or to one cluster node (its ``client`` then ours)."""

    def __init__(self, name: str, pubsub: Any, client: aioredis.Redis | None = None) -> None:
        self.name = name
        self.pubsub = pubsub
        self.client = client
        self.channels: set[str] = set()
        self.reader: asyncio.Task[None] | None = None
        self.read_timeout_s: float | None = 1.0
        """How long one read waits for a message; None: until one comes (no timer per message, a task that
        stops only when cancelled). A connection with a read timeout of its own (``socket_timeout``) needs one."""

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()


class Subscriptions:
    """Joins sockets to their user's channel and hands each published message to the channel's sockets."""

    def __init__(
        self, connection: aioredis.Redis, control: str, on_lost: OnLost, *, subscribe_timeout_s: float = 5.0
    ) -> None:
        self.redis = connection
        self.sharded = is_cluster(connection)  # SSUBSCRIBE on the node owning each channel's slot
        self._control = control
        self._on_lost = on_lost
        self.subscribe_timeout_s = subscribe_timeout_s
        self._control_seen = False
        self._single: _Link | None = None  # on a single server, the one connection
        self._links: dict[str, _Link] = {}  # on a cluster: node name -> its connection
        self._link_of: dict[str, _Link] = {}  # channel -> the connection carrying it
        self._reader: asyncio.Task[None] | None = None
        self._failed: asyncio.Future[None] | None = None
        self._stale_slots = False  # a node connection failed: refresh the slot map before the next one
        self._stopping = False
        self._subs: dict[str, set[Socket]] = {}
        self._ready: dict[str, asyncio.Future[None]] = {}
        self._confirms: dict[str, deque[asyncio.Future[None]]] = {}

    def __len__(self) -> int:
        return len(self._subs)

    async def start(self) -> None:
        """Open the pub/sub connection (on a cluster: when the first socket joins) and start reading."""
        self._stopping = False
        if self.sharded:
            self._failed = asyncio.get_running_loop().create_future()
            self._reader = asyncio.create_task(self._watch(self._failed), name="zsched-gateway-pubsub")
            return
        client = _reader_client(self.redis)
        self._single = _Link("", (client or self.redis).pubsub(), client)
        self._single.read_timeout_s = None if client is not None else 1.0
        await self._single.pubsub.subscribe(self._control)  # keeps the connection open and marks reconnects
        self._reader = asyncio.create_task(self._read_single(self._single), name="zsched-gateway-pubsub")

    @property
    def reader(self) -> asyncio.Task[None] | None:
        """The task that ends when reading fails for a reason a reconnect does not cure (None before ``start``)."""
        return self._reader

    async def stop(self) -> None:
        """Stop reading and close the connections."""
        self._stopping = True
        links = [*self._links.values(), *([self._single] if self._single is not None else [])]
        tasks = [t for t in (self._reader, *(link.reader for link in links)) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for link in links:  # bounded: a connection stuck mid-read must not hold the shutdown
            try:
                await asyncio.wait_for(link.close(), CLOSE_S)
            except TimeoutError:
                log.error("gateway: closing a pub/sub connection took over %.0f s; abandoned", CLOSE_S)
        self._links.clear()

    # -- reading -------------------------------------------------------------------------------------

    async def _watch(self, failed: asyncio.Future[None]) -> None:
        await failed  # a node reader's unexpected error ends this task, which the gateway's liveness watches

    async def _read_single(self, link: _Link) -> None:
        backoff_s = 0.1
        while not self._stopping:
            try:
                message = await link.pubsub.get_message(timeout=link.read_timeout_s)
                backoff_s = 0.1
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                # What is published until redis-py resubscribes is lost to pub/sub; the resubscription (the control
                # channel's confirmation, below) is when the gateway catches its sockets up from their inboxes.
                log.warning("pub/sub connection lost (%s); reconnecting in %.1f s", exc, backoff_s)
                self._fail_joins("redis connection lost; reconnect with ?since=<last stream_id>", None)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 5.0)
                continue
            if message is not None:
                self._handle_safely(link, message)

    async def _read_node(self, link: _Link) -> None:
        try:
            while not self._stopping and self._links.get(link.name) is link:
                try:
                    message = await link.pubsub.get_message(timeout=1.0)
                except LOST as exc:
                    log.warning(
                        "pub/sub connection to %s lost (%s); closing its sockets so they resume", link.name, exc
                    )
                    self._forget(link, f"redis node {link.name} lost; reconnect with ?since=<last stream_id>")
                    return
                if message is not None:
                    self._handle_safely(link, message)
        except Exception as exc:  # a bug, not an outage: report it through the watched task
            if self._failed is not None and not self._failed.done():
                self._failed.set_exception(exc)
            raise

    def _handle_safely(self, link: _Link, message: dict[str, Any]) -> None:
        try:
            self._handle(link, message)
        except Exception:  # one odd message must not end the reader, and with it every live socket
            log.exception("dropped a pub/sub message the gateway could not handle: %.200r", message)

    def _handle(self, link: _Link, message: dict[str, Any]) -> None:
        kind, channel = _text(message["type"]), _text(message["channel"])
        if kind in ("message", "smessage"):
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
                # redis-py reconnected and resubscribed every channel, in the command this confirms; what was
                # published meanwhile is lost to pub/sub, so every socket catches up from its inbox stream.
                self._lose("redis reconnected; reconnect with ?since=<last stream_id>", None)
            self._control_seen = True
        elif kind in ("subscribe", "ssubscribe"):
            waiting = self._confirms.get(channel)
            if waiting:
                future = waiting.popleft()
                if not waiting:
                    del self._confirms[channel]
                if not future.done():
                    future.set_result(None)
            elif kind == "ssubscribe" and channel in link.channels:
                # A confirmation nobody waits for: redis-py reconnected and resubscribed this node's channels.
                self._forget(link, f"redis node {link.name} reconnected; reconnect with ?since=<last stream_id>")
        elif kind == "sunsubscribe" and channel in self._subs and self._link_of.get(channel) is link:
            # The server dropped us: the channel's slot moved to another node. Its sockets rejoin there.
            self._forget(link, f"channel moved off redis node {link.name}; reconnect with ?since=<last stream_id>")

    def _lose(self, reason: str, channels: frozenset[str] | None) -> None:
        """Messages on ``channels`` (None: all) were lost: tell the gateway, fail joins waiting there."""
        self._on_lost(reason, channels)
        self._fail_joins(reason, channels)

    def _fail_joins(self, reason: str, channels: frozenset[str] | None) -> None:
        for channel in list(self._confirms) if channels is None else channels & self._confirms.keys():
            for future in self._confirms.pop(channel):
                if not future.done():
                    future.set_exception(ConnectionError(reason))

    def _forget(self, link: _Link, reason: str) -> None:
        """Close a cluster node's connection and its sockets; their channels start over on the next join."""
        if self._links.get(link.name) is not link:
            return
        del self._links[link.name]
        channels = frozenset(link.channels)
        for channel in channels:
            self._link_of.pop(channel, None)
            self._subs.pop(channel, None)
            self._ready.pop(channel, None)
        self._lose(reason, channels)
        if not self._stopping:
            asyncio.get_running_loop().create_task(link.close())

    # -- joining and leaving -------------------------------------------------------------------------

    async def join(self, client: Socket) -> None:
        """Add the socket to its user's channel, subscribing first if it is the channel's first socket."""
        channel = client.channel
        clients = self._subs.get(channel)
        if clients is None:
            self._subs[channel] = {client}
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._ready[channel] = future
            self._confirms.setdefault(channel, deque()).append(future)
            try:
                await self._subscribe(channel)
            except BaseException:
                self._subs.pop(channel, None)
                self._ready.pop(channel, None)
                self._confirms.pop(channel, None)
                raise
        else:
            clients.add(client)
            future = self._ready[channel]
        # Messages reach us only once the server has processed the subscribe: wait for its confirmation.
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
                await self._unsubscribe(client.channel)

    async def _subscribe(self, channel: str) -> None:
        if self._single is not None:
            await self._single.pubsub.subscribe(channel)
            return
        link = await self._link_for(channel)
        link.channels.add(channel)
        self._link_of[channel] = link
        try:
            await link.pubsub.ssubscribe(channel)
        except LOST as exc:
            self._stale_slots = True  # the node may be gone for good (a failover): ask the cluster again first
            self._forget(link, f"redis node {link.name} lost ({exc})")
            raise
        if link.reader is None:
            link.reader = asyncio.create_task(self._read_node(link), name=f"zsched-gateway-pubsub-{link.name}")

    async def _unsubscribe(self, channel: str) -> None:
        if self._single is not None:
            await self._single.pubsub.unsubscribe(channel)
            return
        link = self._link_of.pop(channel, None)
        if link is not None:
            link.channels.discard(channel)
            await link.pubsub.sunsubscribe(channel)

    async def _link_for(self, channel: str) -> _Link:
        """The connection to the node that owns ``channel``'s slot, opened on first use."""
        await self.redis.initialize()  # the cluster client learns the slot map once (a no-op after)
        if self._stale_slots:
            self._stale_slots = False
            await self.redis.nodes_manager.initialize()  # type: ignore[attr-defined]
        node = self.redis.get_node_from_key(channel)  # type: ignore[attr-defined]
        link = self._links.get(node.name)
        if link is None:
            pool = aioredis.ConnectionPool(connection_class=node.connection_class, **node.connection_kwargs)
            client = aioredis.Redis(connection_pool=pool)
            link = self._links[node.name] = _Link(node.name, client.pubsub(), client)
        return link
