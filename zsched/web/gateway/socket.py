"""One open WebSocket as the gateway sees it: a bounded send queue, the live messages held while the
backlog is sent (so the seam between backlog and live has no gap and no duplicate), and its message budget.

A gateway holds thousands of these, so each is kept small: the queue is a list with one future for the one
task that sends from it (the socket's own handler), not an ``asyncio.Queue`` and a task of its own."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from starlette.websockets import WebSocket

from . import messages

log = logging.getLogger("zsched.gateway")
StreamId = tuple[int, int]
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_RESTART = 1012
CLOSE_TRY_AGAIN = 1013


def parse_stream_id(text: str) -> StreamId:
    """``"1700000000000-3"`` (or ``"1700000000000"``) as a comparable ``(ms, seq)`` pair."""
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def stamp(stream_id: str, body: str) -> str:
    """The message as pushed: the stored JSON object with ``stream_id`` spliced in first (as the Lua does)."""
    return '{"stream_id":"' + stream_id + '",' + body[1:]


class TokenBucket:
    """An in-process token bucket: ``burst`` takes at once, refilled continuously at ``rate_per_s``."""

    __slots__ = ("at", "burst", "clock", "rate_per_s", "tokens")

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"rate_per_s must be > 0 and burst >= 1; got {rate_per_s} and {burst}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.at = clock()

    def take(self) -> bool:
        """Spend one token if there is one; whether there was."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate_per_s)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Socket:
    """One open socket: its bounded send queue, the live messages held while its backlog is sent, the digest
    of the token it was opened with (re-checked while it is open) and its budget of client messages."""

    __slots__ = (
        "_room",
        "_stopped",
        "_wake",
        "budget",
        "busy",
        "channel",
        "close_code",
        "close_reason",
        "closing",
        "digest",
        "direct",
        "heard_at",
        "held",
        "last",
        "live",
        "outbox",
        "pinged_at",
        "queue_size",
        "release",
        "unread",
        "unread_at",
        "user",
        "websocket",
    )  # fmt: skip

    def __init__(
        self, websocket: WebSocket, user: str, channel: str, queue_size: int, *, digest: str, budget: TokenBucket
    ) -> None:
        self.websocket = websocket
        self.user = user
        self.channel = channel
        self.digest = digest
        self.budget = budget
        self.queue_size = queue_size
        self.outbox: list[str] = []  # rarely more than one message: a list is smaller than a deque
        self.direct: Callable[[str], bool] | None = None  # writes a message at once when it can (see ``push``)
        self.release: Callable[[], None] | None = None  # lets a write waiting for room go on (see ``stop``)
        self.busy = False  # the handler holds a message taken from the outbox and not yet written
        self.live = False
        self.held: list[tuple[StreamId, str]] = []
        self.last: StreamId = (0, 0)
        self.close_code: int | None = None
        self.close_reason = ""
        self.closing = False
        """Set once the socket stops sending: it is being closed, or the client left."""
        self.heard_at = self.pinged_at = time.monotonic()
        self._wake: asyncio.Future[None] | None = None  # the sender, waiting for a message or a close
        self._room: asyncio.Future[None] | None = None  # a reply, waiting for room in the outbox
        self._stopped: asyncio.Future[None] | None = None  # made only when someone waits for ``closing``
        # Opened with ?unread=1: the inbox's unread count as last sent, counting entries up to unread_at.
        self.unread: int | None = None
        self.unread_at: StreamId = (0, 0)

    def offer(self, stream_id: StreamId, text: str) -> None:
        """A live message: held until the backlog is sent, then queued unless already sent."""
        if not self.live:
            if len(self.held) >= self.queue_size:
                self.close(CLOSE_TRY_AGAIN, "send queue full: the client is not reading")
                return
            self.held.append((stream_id, text))
        elif stream_id > self.last:
            self.last = stream_id
            self.push(text)
            if self.unread is not None and stream_id > self.unread_at:  # a new entry: one more unread
                self.set_unread(self.unread + 1, stream_id)

    def set_unread(self, count: int, at: StreamId) -> None:
        """Send the unread count, which counts the inbox's entries up to ``at`` (a socket watching it)."""
        self.unread, self.unread_at = count, max(at, self.unread_at)
        ms, seq = self.unread_at
        self.push(messages.encode(messages.Unread(count, f"{ms}-{seq}")))

    def push(self, text: str) -> None:
        """Send a message: written at once when nothing is queued or being written before it (``direct``),
        else queued for the handler. A full queue means a client that stopped reading, so it is closed (1013)."""
        if not self.outbox and not self.busy and not self.closing and self.direct is not None:
            try:
                if self.direct(text):
                    return
            except Exception:  # a protocol this path does not know: the handler sends, as without it
                log.exception(
                    "the direct write failed for a socket of %s; its messages go through its handler", self.user
                )
                self.direct = None
        if len(self.outbox) >= self.queue_size:
            self.close(CLOSE_TRY_AGAIN, "send queue full: the client is not reading")
            return
        self.outbox.append(text)
        _wake(self._wake)

    async def reply(self, text: str) -> None:
        """Queue the answer to a client message, waiting for room: a client that sends without reading
        stops being read (its live messages still close it with 1013 when the queue stays full)."""
        while len(self.outbox) >= self.queue_size and not self.closing:
            self._room = asyncio.get_running_loop().create_future()
            await self._room
        self.outbox.append(text)
        _wake(self._wake)

    async def next_message(self) -> str | None:
        """The next message to send, waiting for one; None once the socket is closing (what is queued is dropped)."""
        while not self.outbox or self.closing:
            if self.closing:
                return None
            self._wake = asyncio.get_running_loop().create_future()
            await self._wake
        text = self.outbox.pop(0)
        _wake(self._room)
        return text

    async def wait_closing(self) -> None:
        """Return once the socket is closing."""
        if not self.closing:
            if self._stopped is None:
                self._stopped = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._stopped)

    def go_live(self) -> None:
        """Send what was held during the backlog, minus what the backlog already sent; then go live."""
        held, self.held = self.held, []
        self.live = True
        for stream_id, text in held:
            self.offer(stream_id, text)

    def close(self, code: int, reason: str) -> None:
        """Ask the connection's handler to close the socket with ``code`` (the first reason wins)."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self.stop()

    def attach(self, send: object) -> None:
        """Write through the protocol behind the ASGI ``send`` when it offers a synchronous path
        (``protocol.LeanWebSocketProtocol``, what ``zsched serve`` runs); not when another protocol serves the
        socket, or a middleware wrapped ``send``."""
        protocol = getattr(send, "__self__", None)
        self.direct = getattr(protocol, "send_text_now", None)
        self.release = getattr(protocol, "release_writer", None)

    def stop(self) -> None:
        """Stop sending (the client left, or the socket is closing): the sender and any waiting reply return,
        including a sender waiting for a client that stopped reading to make room."""
        if self.busy and not self.closing and self.release is not None:
            self.release()
        self.closing = True
        _wake(self._wake)
        _wake(self._room)
        _wake(self._stopped)


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
