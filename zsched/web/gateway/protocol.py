"""The WebSocket protocol ``zsched serve`` runs under uvicorn: uvicorn's own sans-I/O one (``websockets-sansio``,
its default since 0.50), keeping less per connection, which decides how many idle sockets one gateway holds.

It behaves as uvicorn's does (it is that class: same frames, close codes, pings, ``ws_max_size``, backpressure)
and differs only in what each connection keeps: a list and a future where uvicorn keeps an ``asyncio.Queue``
(four deques and an Event, about 3 KiB) for the few events that wait for the app; a flag where it keeps an
``asyncio.Event`` for backpressure; slots where it keeps an instance dict of 37 attributes; and neither the
handshake request's headers nor the response once the handshake is done (about 4 KiB).

To use it with uvicorn yourself: ``uvicorn.run(app, ws=lean_protocol())`` (or
``ws="zsched.web.gateway.protocol:LeanWebSocketProtocol"``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from uvicorn._types import ASGIReceiveEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.http11 import Request


class _Inbox:
    """The events waiting for the app (connect, each received message, disconnect): what ``asyncio.Queue`` does
    for them, in a list and a future per waiting reader. Reading is paused while one message waits, so it rarely
    holds more than two."""

    __slots__ = ("_events", "_readers")

    def __init__(self) -> None:
        self._events: list[ASGIReceiveEvent] = []
        self._readers: list[asyncio.Future[None]] = []

    def put_nowait(self, event: ASGIReceiveEvent) -> None:
        """Add an event and wake the readers waiting for one."""
        self._events.append(event)
        readers, self._readers = self._readers, []
        for reader in readers:
            if not reader.done():
                reader.set_result(None)

    async def get(self) -> ASGIReceiveEvent:
        """The oldest event, waiting for one."""
        while not self._events:
            reader = asyncio.get_running_loop().create_future()
            self._readers.append(reader)
            try:
                await reader
            finally:  # cancelled: a wake meant for it is not lost, since the event stays in the list
                if reader in self._readers:
                    self._readers.remove(reader)
        return self._events.pop(0)

    def empty(self) -> bool:
        """Whether no event is waiting."""
        return not self._events

    def qsize(self) -> int:
        """How many events are waiting."""
        return len(self._events)


class _Flag:
    """What ``asyncio.Event`` does for backpressure (set: the transport takes more), with no deque until a
    sender waits: a future made only while the transport's buffer is full."""

    __slots__ = ("_on", "_waiter")

    def __init__(self) -> None:
        self._on = False
        self._waiter: asyncio.Future[None] | None = None

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._on

    def set(self) -> None:
        """Set the flag and wake every waiting sender."""
        self._on = True
        if self._waiter is not None:
            if not self._waiter.done():
                self._waiter.set_result(None)
            self._waiter = None

    def clear(self) -> None:
        """Clear the flag: senders wait from now on."""
        self._on = False

    async def wait(self) -> bool:
        """Return once the flag is set (at once if it is)."""
        while not self._on:
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._waiter)  # shared by every waiting sender: one cancelled leaves it be
        return True


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``WebSocketsSansIOProtocol`` keeping less per connection (see the module docstring)."""

    # Every attribute uvicorn's __init__ and handshake set (0.50-0.54): slots instead of a dict per instance.
    # One that a later uvicorn adds still works; it lands in the instance dict.
    __slots__ = (
        "app", "app_state", "asgi_version", "client", "close_sent", "close_timeout", "close_timer", "config",
        "conn", "connections", "curr_msg_data_type", "default_headers", "disconnected", "frames",
        "handshake_complete", "handshake_initiated", "initial_response", "last_ping_rtt", "logger", "loop",
        "pending_ping_payload", "ping_interval", "ping_sent_at", "ping_timeout", "ping_timer", "pong_timer",
        "queue", "read_paused", "request", "response", "root_path", "scheme", "scope", "server", "tasks",
        "transport", "writable",
    )  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Flag()  # type: ignore[assignment]
        self.writable.set()

    def handle_connect(self, event: Request) -> None:
        """Answer the handshake request, then let go of it: the scope has what the app reads."""
        super().handle_connect(event)
        del self.request
        # websockets' parser keeps the request (a local of its generator) for as long as the connection lives:
        # its headers are read by now (into the scope, and by the handshake), so they need not live that long.
        event.headers.clear()

    def send_text_now(self, text: str) -> bool:
        """Write a text frame at once, from synchronous code, when nothing stands in its way: the handshake is
        done, no close was sent or received, and the kernel took everything written so far. Whether it was
        written; when not, the caller queues it and sends it the usual way (``send``), which waits for room or
        raises as uvicorn's does. So what the kernel has not taken counts against the socket's send queue.

        This is what a delivery to a live socket costs when its queue is empty: no task woken and no coroutine
        through the ASGI ``send``, and nothing made that lives until the socket's next message."""
        if (
            not self.handshake_complete
            or self.close_sent
            or getattr(self, "disconnected", False)  # set by uvicorn 0.51 and later, when the client is gone
            or self.initial_response is not None
            or not self.writable.is_set()
            or self.transport.is_closing()
            or self.transport.get_write_buffer_size()  # the kernel stopped taking: it waits in the queue
        ):
            return False
        try:
            self.conn.send_text(text.encode())
        except InvalidState:  # the client's close arrived: ``send`` raises ClientDisconnected for it
            return False
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True

    def release_writer(self) -> None:
        """Let a ``send`` waiting for room go on: its socket is closing (a client that stopped reading), so the
        message in hand and the close frame go to the transport's buffer instead of waiting for ever."""
        self.writable.set()

    def start_keepalive(self) -> None:
        """Start the keepalive pings: the handshake's response has just been sent, so it is let go (here rather
        than in ``send``, which every frame passes through)."""
        super().start_keepalive()
        with contextlib.suppress(AttributeError):  # let go once, however often a later uvicorn calls this
            del self.response


def lean_protocol() -> type[asyncio.Protocol]:
    """The protocol class for ``uvicorn.run(ws=...)``: this module's (what ``zsched serve`` runs)."""
    return LeanWebSocketProtocol
