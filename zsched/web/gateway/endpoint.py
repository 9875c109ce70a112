"""The WebSocket gateway: ``GET /ws`` pushes each delivered notification to its recipient's open sockets.

One Redis pub/sub connection per gateway multiplexes every connected user: a user's channel is
subscribed when their first socket connects and unsubscribed when their last one leaves. Workers never
talk to sockets; they append to the recipient's inbox stream and PUBLISH (``publish_inbox.lua``), so
any number of gateways on one Redis each serve their own clients.

A connection, in order: ``admission`` checks the Origin, the token and the token's connect budget (a
refusal closes the socket before anything is sent); the user's channel is subscribed and the
subscription confirmed; ``replay`` sends the backlog from the inbox stream, page by page
(``?since=<stream_id>``: everything after it; no ``since``: every entry not yet acked; a trimmed gap is
said first); then live messages, while ``inbound`` answers the client's messages (``messages`` is the
wire format). Live messages that arrive while the backlog is sent are held and sent after it, skipping
any the backlog already had, so the seam has no gap and no duplicate. Anything that closes a socket (a
limit, a revoked token, shutdown) ends its handler at once, the backlog included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any

import redis
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from ...connection import cluster_enabled
from ...engine.keys import Keyspace
from ...engine.layout import read_generations
from ..auth import TokenStore
from ..ratelimit import FailedAuthLimiter
from . import messages
from .admission import Admission, Refused
from .inbound import Inbound
from .replay import PAGE, STREAM_ID, Backlog, catch_up, replay
from .revocation import RevocationWatch
from .socket import CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_RESTART, CLOSE_TRY_AGAIN, Socket
from .subscriptions import Subscriptions
from .tenure import Tenure

log = logging.getLogger("zsched.gateway")
LAYOUT_EVERY_S = 1.0
"""How often a gateway looks for a new keyspace generation (``zsched reshard``)."""

_HANDLED = (WebSocketDisconnect, ConnectionError, OSError, redis.RedisError, TimeoutError)
"""What ends one socket's handler without ending the gateway: the client left, or Redis failed it."""


class Gateway:
    """The ``/ws`` endpoint (``route``) and the shared pub/sub connection behind it (``start``/``stop``).

    ``redis`` is a URL or a ``redis.asyncio`` client (its pool lends the one pub/sub connection).
    ``allowed_origins`` lists browser origins besides the page's own; ``"*"`` allows any. A socket whose
    unsent messages exceed ``send_queue`` is closed with 1013. When ``idle_timeout_s`` is set, a client
    that sends nothing (not even a pong to the ``heartbeat_s`` pings) for that long is closed with 1001.
    ``failures`` counts bad tokens per client address (shared with the HTTP API when served together).
    The backlog is read ``backlog_page`` inbox entries at a time; ``backlog_limit`` is deprecated and unused.

    Limits (a client breaking one is closed with the code named): a token may connect ``connects_burst``
    times at once, then ``connects_per_s`` a second, counted in Redis across gateways (1013); a client
    message may be at most ``max_frame_bytes`` (1009) and a text frame (1003); a socket may send
    ``messages_burst`` messages at once, then ``messages_per_s`` a second (1008); an ack may name at most
    ``max_ack_ids`` ids (1008); each backlog message must be taken within ``send_timeout_s`` (1013); and a
    revoked token's sockets are closed within about ``revoke_check_s`` (1008).

    From ``freeze_from_sockets`` open sockets on (0: never), the objects of open sockets are frozen out of the
    garbage collector's full collections (``tenure.Tenure``); like the collector, that is process-wide.
    """

    def __init__(
        self,
        redis_client: str | aioredis.Redis,
        keyspace: Keyspace,
        tokens: TokenStore,
        *,
        path: str = "/ws",
        allowed_origins: Sequence[str] = (),
        send_queue: int = 256,
        heartbeat_s: float = 20.0,
        idle_timeout_s: float | None = None,
        backlog_limit: int = 100,
        backlog_page: int = PAGE,
        close_timeout_s: float = 2.0,
        subscribe_timeout_s: float = 5.0,
        failures: FailedAuthLimiter | None = None,
        connects_per_s: float = 1.0,
        connects_burst: int = 20,
        max_frame_bytes: int = 64 * 1024,
        messages_per_s: float = 50.0,
        messages_burst: int = 1000,
        max_ack_ids: int = 1000,
        send_timeout_s: float = 10.0,
        revoke_check_s: float = 0.5,
        freeze_from_sockets: int = 1000,
    ) -> None:
        if send_queue < 1 or backlog_page < 1 or heartbeat_s <= 0 or send_timeout_s <= 0:
            raise ValueError(
                "send_queue and backlog_page must be >= 1, heartbeat_s and send_timeout_s > 0; got "
                f"{send_queue}, {backlog_page}, {heartbeat_s}, {send_timeout_s}"
            )
        self._redis_arg = redis_client
        self.redis: aioredis.Redis = redis_client if not isinstance(redis_client, str) else _from_url(redis_client)
        self.keys = keyspace
        self.tokens = tokens
        self.path = path
        self.send_queue = send_queue
        self.heartbeat_s = heartbeat_s
        self.idle_timeout_s = idle_timeout_s
        self.backlog_limit = backlog_limit  # deprecated, unused: a connect replays every unacked entry
        self.backlog_page = backlog_page
        self.close_timeout_s = close_timeout_s
        self.subscribe_timeout_s = subscribe_timeout_s
        self.send_timeout_s = send_timeout_s
        self._inbound = Inbound(
            self.redis,
            keyspace,
            max_frame_bytes=max_frame_bytes,
            messages_per_s=messages_per_s,
            messages_burst=messages_burst,
            max_ack_ids=max_ack_ids,
        )
        self._admission = Admission(
            self.redis,
            keyspace.prefix,
            tokens,
            failures or FailedAuthLimiter(self.redis, keyspace.prefix),
            allowed_origins=allowed_origins,
            connects_per_s=connects_per_s,
            connects_burst=connects_burst,
        )
        self._revocations = RevocationWatch(self.redis, tokens, lambda: self._clients, interval_s=revoke_check_s)
        self._subscriptions = Subscriptions(
            self.redis,
            f"{keyspace.prefix}:gateway:{uuid.uuid4().hex}",
            self._drop,
            subscribe_timeout_s=subscribe_timeout_s,
        )
        self._clients: set[Socket] = set()
        self._tenure = Tenure(freeze_from_sockets)
        self._catching_up: set[asyncio.Task[None]] = set()  # sockets reading their inbox after a pub/sub blip
        self._heartbeats: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def route(self) -> WebSocketRoute:
        """The Starlette route to mount: ``WebSocketRoute(path, endpoint)``."""
        return WebSocketRoute(self.path, self.endpoint)

    @property
    def failures(self) -> FailedAuthLimiter:
        """Counts bad tokens per client address; refuses an address while its budget is spent."""
        return self._admission.failures

    @failures.setter
    def failures(self, limiter: FailedAuthLimiter) -> None:
        self._admission.failures = limiter

    @property
    def connections(self) -> int:
        """How many sockets are open on this gateway."""
        return len(self._clients)

    @property
    def sockets_by_recipient(self) -> dict[str, int]:
        """How many sockets are open on this gateway per recipient (only those with one open)."""
        return dict(Counter(client.user for client in self._clients))

    @property
    def subscriptions(self) -> int:
        """How many user channels the pub/sub connections are subscribed to."""
        return len(self._subscriptions)

    async def start(self) -> None:
        """Open the shared pub/sub connection and start reading it; start re-checking open sockets' tokens."""
        self._stopping = False
        await self._subscriptions.start()
        await self._revocations.start()
        self._heartbeats = asyncio.create_task(self._heartbeat(), name="zsched-gateway-heartbeat")

    def background_tasks(self) -> dict[str, asyncio.Task[None]]:
        """The tasks this gateway cannot serve without, by name (the pub/sub reader)."""
        reader = self._subscriptions.reader
        tasks = {} if reader is None else {"gateway's pub/sub reader": reader}
        if self._heartbeats is not None:
            tasks["gateway's heartbeat"] = self._heartbeats
        return tasks

    async def stop(self) -> None:
        """Close every socket (1001), wait briefly for their handlers, then close the pub/sub connection."""
        self._stopping = True
        for client in list(self._clients):
            client.close(CLOSE_GOING_AWAY, "server shutting down")
        deadline = time.monotonic() + self.close_timeout_s
        while self._clients and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for task in list(self._catching_up):
            task.cancel()
        await asyncio.gather(*self._catching_up, return_exceptions=True)
        if self._heartbeats is not None:
            self._heartbeats.cancel()
            await asyncio.gather(self._heartbeats, return_exceptions=True)
            self._heartbeats = None
        await self._revocations.stop()
        await self._subscriptions.stop()
        if isinstance(self._redis_arg, str):
            await self.redis.aclose()

    # -- one socket ----------------------------------------------------------------------------------

    async def endpoint(self, websocket: WebSocket) -> None:
        """Serve one socket from handshake to close."""
        admitted = await self._admission.admit(websocket)
        await websocket.accept()
        if isinstance(admitted, Refused):
            await websocket.close(admitted.code, admitted.reason)
            return
        since = websocket.query_params.get("since") or None
        if since is not None and not STREAM_ID.fullmatch(since):
            await websocket.close(CLOSE_POLICY, "since must be a stream_id like 1700000000000-0")
            return
        if self._stopping:
            await websocket.close(CLOSE_RESTART, "server shutting down")
            return
        user = admitted.principal.user
        channel = self.keys.for_recipient(user).user_channel(user)
        client = Socket(
            websocket, user, channel, self.send_queue, digest=admitted.digest, budget=self._inbound.budget()
        )
        self._clients.add(client)
        self._tenure.open()
        tasks: list[asyncio.Task[Any]] = []
        try:
            await self._subscriptions.join(client)
            backlog = await self._unless_closed(
                client, replay(self.redis, self.keys, client, since, self.backlog_page, self.send_timeout_s)
            )
            if backlog is None:
                return  # closed while the backlog was sent: a limit, a revoked token, shutdown
            last = None if client.last == (0, 0) else f"{client.last[0]}-{client.last[1]}"
            ready = messages.Ready(user, backlog.sent, last, backlog.truncated, backlog.oldest_stream_id)
            client.push(messages.encode(ready))
            if websocket.query_params.get("unread") == "1":  # the count now, then each change (socket.set_unread)
                await self._inbound.watch_unread(client)
            client.go_live()
            # This handler sends; one task reads. The gateway-wide heartbeat pings every socket, so a socket costs
            # two tasks, not one per loop: the memory that decides how many sockets one process holds.
            reader = asyncio.create_task(self._inbound.run(client))
            reader.add_done_callback(lambda _: client.stop())
            tasks = [reader]
            # From here on, nothing else sends on this socket but this loop and ``push``'s direct writes, which
            # wait for an empty outbox and no message in hand: the order stays the outbox's.
            client.attach(websocket._send)
            while (text := await client.next_message()) is not None:
                client.busy = True  # until it is written, a message pushed meanwhile queues behind it
                await client.websocket.send_text(text)
                client.busy = False
            if reader.done():  # the reader's failure (a Redis error in an ack, the client left) is handled below
                error = None if reader.cancelled() else reader.exception()
                if isinstance(error, _HANDLED):
                    raise error
        except _HANDLED as exc:
            if not isinstance(exc, WebSocketDisconnect):
                log.warning("closing socket of %s: %s", user, exc)
                client.close(CLOSE_TRY_AGAIN, "gateway could not reach redis; reconnect later")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._clients.discard(client)
            self._tenure.close()
            await self._subscriptions.leave(client)
            if client.close_code is not None:
                with contextlib.suppress(Exception):  # the peer may be gone, or too stuck to take a close frame
                    await asyncio.wait_for(
                        websocket.close(client.close_code, client.close_reason), self.close_timeout_s
                    )

    def _drop(self, reason: str, channels: frozenset[str] | None) -> None:
        """A pub/sub connection lost the messages of ``channels`` (None: all). Each live socket there catches up
        from its inbox: on a single server once redis-py has subscribed again (it has, by now), on a cluster
        once it has joined its channel again over a new connection to the node owning it. A socket still sending
        its backlog, or one that cannot catch up, is closed (1012) and resumes with ``since``."""
        for client in list(self._clients):
            if channels is not None and client.channel not in channels:
                continue
            if not client.live:
                client.close(CLOSE_RESTART, reason)
                continue
            task = asyncio.create_task(self._catch_up(client, reason, rejoin=self._subscriptions.sharded))
            self._catching_up.add(task)
            task.add_done_callback(self._catching_up.discard)

    async def _catch_up(self, client: Socket, reason: str, *, rejoin: bool) -> None:
        try:
            if rejoin:
                client.live = False  # what arrives once subscribed again is held until the inbox is read
                await self._subscriptions.join(client)
                if client not in self._clients:  # its handler ended meanwhile, and left before this join
                    await self._subscriptions.leave(client)
                    return
            if await catch_up(self.redis, self.keys, client, self.backlog_page):
                return
        except (redis.RedisError, OSError) as exc:  # OSError: a connection error, or a join not confirmed in time
            log.warning("could not catch %s up after a pub/sub blip: %s", client.user, exc)
        client.close(CLOSE_RESTART, reason)

    async def _unless_closed(self, client: Socket, work: Coroutine[Any, Any, Backlog]) -> Backlog | None:
        """``work``'s result, or None when the socket is closed first (``work`` is then cancelled)."""
        task = asyncio.create_task(work)
        closing = asyncio.create_task(client.wait_closing())
        try:
            await asyncio.wait((task, closing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if client.closing or not task.done():
                task.cancel()
                await asyncio.gather(task, closing, return_exceptions=True)
        return None if client.closing else task.result()

    async def _heartbeat(self) -> None:
        """Ping each live socket ``heartbeat_s`` after its last ping (or its connect), and close those silent for
        over ``idle_timeout_s``. Ticks ten times a period, so the pings stay spread as the connects were, not one
        wave of 10,000 pings (and pongs) that would hold up the deliveries due meanwhile."""
        next_layout = time.monotonic() + LAYOUT_EVERY_S
        while True:
            await asyncio.sleep(min(self.heartbeat_s / 10, LAYOUT_EVERY_S))
            now = time.monotonic()
            if now >= next_layout:
                next_layout = now + LAYOUT_EVERY_S
                await self._follow_layout()
            self._tenure.tick(len(self._clients))
            for client in list(self._clients):
                if not client.live or client.closing or now - client.pinged_at < self.heartbeat_s:
                    continue
                client.pinged_at = now
                idle_s = now - client.heard_at
                if self.idle_timeout_s is not None and idle_s > self.idle_timeout_s:
                    client.close(CLOSE_GOING_AWAY, f"no message from the client for {idle_s:.0f} s; answer pings")
                else:
                    client.push(messages.PING)

    async def _follow_layout(self) -> None:
        """After a reshard opened a new generation (``zsched reshard``), serve from it: every socket is closed
        with 1012 (restart) and reconnects, subscribed to its recipient's channel in the new partitions and
        resuming from the inbox there. A Redis error here is only logged: the next look is a second later."""
        try:
            fields = await self.redis.hgetall(self.keys.layout)
        except (redis.RedisError, OSError) as exc:
            log.debug("gateway could not read the layout (%s)", exc)
            return
        generations = read_generations(self.keys, fields)
        if generations[-1].number <= self.keys.generations[-1].number:
            return
        self.keys.adopt(generations)
        log.info("the keyspace was resharded: reconnecting %d sockets to its new partitions", len(self._clients))
        for client in list(self._clients):
            client.close(CLOSE_RESTART, "the keyspace was resharded; reconnect")


def _from_url(url: str) -> aioredis.Redis:
    """A client for the Redis at ``url``: a cluster client when the server says it is a cluster node."""
    if cluster_enabled(url):
        return aioredis.RedisCluster.from_url(url)  # type: ignore[return-value]
    return aioredis.Redis.from_url(url)


class Shortcut:
    """ASGI middleware taking ``path``'s WebSocket upgrades straight to the app's ``state.gateway``, past the
    router and the exception middleware: their frames live as long as the socket, about 4 KiB of each
    socket's memory. The gateway handles its own errors, so they had nothing to do."""

    def __init__(self, app: ASGIApp, path: str = "/ws") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Mounted under a prefix, the path still carries it (and root_path names it).
        if scope["type"] == "websocket" and scope["path"] in (self.path, scope.get("root_path", "") + self.path):
            await scope["app"].state.gateway.endpoint(WebSocket(scope, receive, send))
        else:
            await self.app(scope, receive, send)


def gateway_app(gateway: Gateway) -> Starlette:
    """A Starlette app serving only the gateway, starting and stopping it with the app (tests, embedding). Its
    upgrades take the ``Shortcut``, as ``zsched serve``'s do."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = Starlette(lifespan=lifespan, middleware=[Middleware(Shortcut, path=gateway.path)])  # no route: it never ran
    app.state.gateway = gateway
    return app
