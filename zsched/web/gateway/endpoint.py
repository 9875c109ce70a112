"""The WebSocket gateway: ``GET /ws`` pushes each delivered notification to its recipient's open sockets.

One Redis pub/sub connection per gateway multiplexes every connected user: a user's channel is
subscribed when their first socket connects and unsubscribed when their last one leaves. Workers never
talk to sockets; they append to the recipient's inbox stream and PUBLISH (``publish_inbox.lua``), so
any number of gateways on one Redis each serve their own clients.

A connection, in order: the token and Origin are checked (a failure closes with 1008 before anything is
sent); the user's channel is subscribed and the subscription confirmed; the backlog is sent from the
inbox stream (``?since=<stream_id>``: everything after it; no ``since``: the recent entries not yet
acked); then live messages. Live messages that arrive while the backlog is sent are held and sent
after it, skipping any the backlog already had, so the seam has no gap and no duplicate.

    client -> {"type": "ack", "id": 7}      records delivered_at; answered {"type": "acked", ...}
    client -> {"type": "ping"}              answered {"type": "pong"}
    server -> {"type": "ping"}              every heartbeat_s; answer {"type": "pong"}
    server -> {"type": "ready", ...}        the backlog is done; live messages follow
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec
import redis
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ...engine.keys import Keyspace
from ...engine.scripts import Scripts
from ...models import ms_to_datetime
from ..auth import TokenStore
from ..ratelimit import FailedAuthLimiter
from . import messages
from .admission import Admission
from .replay import STREAM_ID, replay
from .socket import CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_RESTART, CLOSE_TRY_AGAIN, Socket
from .subscriptions import Subscriptions

log = logging.getLogger("zsched.gateway")

_HANDLED = (WebSocketDisconnect, ConnectionError, OSError, redis.RedisError, TimeoutError)
"""What ends one socket's handler without ending the gateway: the client left, or Redis failed it."""


class Gateway:
    """The ``/ws`` endpoint (``route``) and the shared pub/sub connection behind it (``start``/``stop``).

    ``redis`` is a URL or a ``redis.asyncio`` client (its pool lends the one pub/sub connection).
    ``allowed_origins`` lists browser origins besides the page's own; ``"*"`` allows any. A socket whose
    unsent messages exceed ``send_queue`` is closed with 1013. When ``idle_timeout_s`` is set, a client
    that sends nothing (not even a pong to the ``heartbeat_s`` pings) for that long is closed with 1001.
    ``failures`` counts bad tokens per client address (shared with the HTTP API when served together).
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
        close_timeout_s: float = 2.0,
        subscribe_timeout_s: float = 5.0,
        failures: FailedAuthLimiter | None = None,
    ) -> None:
        if send_queue < 1 or backlog_limit < 1 or heartbeat_s <= 0:
            raise ValueError(
                "send_queue and backlog_limit must be >= 1 and heartbeat_s > 0; got "
                f"{send_queue}, {backlog_limit}, {heartbeat_s}"
            )
        self._redis_arg = redis_client
        self.redis: aioredis.Redis = (
            aioredis.Redis.from_url(redis_client) if isinstance(redis_client, str) else redis_client
        )
        self.keys = keyspace
        self.tokens = tokens
        self.path = path
        self.send_queue = send_queue
        self.heartbeat_s = heartbeat_s
        self.idle_timeout_s = idle_timeout_s
        self.backlog_limit = backlog_limit
        self.close_timeout_s = close_timeout_s
        self.subscribe_timeout_s = subscribe_timeout_s
        self._scripts = Scripts(self.redis)
        self._admission = Admission(
            self.redis,
            tokens,
            failures or FailedAuthLimiter(self.redis, keyspace.prefix),
            allowed_origins=allowed_origins,
        )
        self._subscriptions = Subscriptions(
            self.redis,
            f"{keyspace.prefix}:gateway:{uuid.uuid4().hex}",
            self._drop_everyone,
            subscribe_timeout_s=subscribe_timeout_s,
        )
        self._clients: set[Socket] = set()
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
    def subscriptions(self) -> int:
        """How many user channels the shared pub/sub connection is subscribed to."""
        return len(self._subscriptions)

    async def start(self) -> None:
        """Open the shared pub/sub connection and start reading it."""
        self._stopping = False
        await self._subscriptions.start()

    async def stop(self) -> None:
        """Close every socket (1001), wait briefly for their handlers, then close the pub/sub connection."""
        self._stopping = True
        for client in list(self._clients):
            client.close(CLOSE_GOING_AWAY, "server shutting down")
        deadline = time.monotonic() + self.close_timeout_s
        while self._clients and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await self._subscriptions.stop()
        if isinstance(self._redis_arg, str):
            await self.redis.aclose()

    # -- one socket ----------------------------------------------------------------------------------

    async def endpoint(self, websocket: WebSocket) -> None:
        """Serve one socket from handshake to close."""
        principal, refusal = await self._admission.admit(websocket)
        await websocket.accept()
        if principal is None:
            await websocket.close(CLOSE_POLICY, refusal)
            return
        since = websocket.query_params.get("since") or None
        if since is not None and not STREAM_ID.fullmatch(since):
            await websocket.close(CLOSE_POLICY, "since must be a stream_id like 1700000000000-0")
            return
        if self._stopping:
            await websocket.close(CLOSE_RESTART, "server shutting down")
            return
        user = principal.user
        client = Socket(websocket, user, self.keys.for_recipient(user).user_channel(user), self.send_queue)
        self._clients.add(client)
        tasks: list[asyncio.Task[Any]] = []
        try:
            await self._subscriptions.join(client)
            replayed = await replay(self.redis, self.keys, client, since, self.backlog_limit)
            last = None if client.last == (0, 0) else f"{client.last[0]}-{client.last[1]}"
            client.push(messages.encode(messages.Ready(user, replayed, last)))
            client.go_live()
            tasks = [
                asyncio.create_task(coro)
                for coro in (
                    self._send_loop(client),
                    self._receive_loop(client),
                    self._heartbeat(client),
                    client.closing.wait(),
                )
            ]
            finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:  # a loop that failed (a Redis error in an ack) is handled below, not lost
                error = None if task.cancelled() else task.exception()
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
            await self._subscriptions.leave(client)
            if client.close_code is not None:
                with contextlib.suppress(Exception):  # the peer may be gone, or too stuck to take a close frame
                    await asyncio.wait_for(
                        websocket.close(client.close_code, client.close_reason), self.close_timeout_s
                    )

    def _drop_everyone(self, reason: str) -> None:
        """The pub/sub connection lost messages: close every socket (1012) so it resumes with ``since``."""
        for client in list(self._clients):
            client.close(CLOSE_RESTART, reason)

    async def _send_loop(self, client: Socket) -> None:
        while True:
            await client.websocket.send_text(await client.queue.get())

    async def _receive_loop(self, client: Socket) -> None:
        while True:
            text = await client.websocket.receive_text()
            client.heard_at = time.monotonic()
            try:
                message = messages.decode(text)
            except msgspec.DecodeError as exc:
                client.push(
                    _error(f"expected a JSON object like {messages.CLIENT_EXAMPLE} (type ack, ping or pong); {exc}")
                )
                continue
            match message:
                case messages.Ack():
                    await self._ack(client, message.all_ids())
                case messages.Ping():
                    client.push(messages.PONG)
                case messages.Pong():
                    pass

    async def _ack(self, client: Socket, ids: list[int]) -> None:
        if not ids:
            client.push(_error('an ack needs "id" (or "ids"): the notification id(s) received'))
            return
        groups: dict[int, list[int]] = {}
        for notification_id in ids:
            groups.setdefault(self.keys.for_id(notification_id).index, []).append(notification_id)
        for index, members in groups.items():
            reply = await self._scripts["mark_delivered"](
                keys=[self.keys.partitions[index].state], args=["", client.user, *members], client=self.redis
            )
            for notification_id, outcome in zip(members, reply[1:], strict=True):
                if int(outcome) < 0:
                    client.push(
                        _error(
                            f"cannot ack notification {notification_id}: no such notification "
                            f"was delivered to {client.user}"
                        )
                    )
                else:
                    client.push(messages.encode(messages.Acked(notification_id, ms_to_datetime(int(outcome)))))

    async def _heartbeat(self, client: Socket) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            idle_s = time.monotonic() - client.heard_at
            if self.idle_timeout_s is not None and idle_s > self.idle_timeout_s:
                client.close(CLOSE_GOING_AWAY, f"no message from the client for {idle_s:.0f} s; answer pings")
                return
            client.push(messages.PING)


def _error(text: str) -> str:
    return messages.encode(messages.Error(text))


def gateway_app(gateway: Gateway) -> Starlette:
    """A Starlette app serving only the gateway, starting and stopping it with the app (tests, embedding)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    return Starlette(routes=[gateway.route], lifespan=lifespan)
