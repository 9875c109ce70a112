"""A loopback TCP proxy in front of the test's Redis that loses the reply of one chosen command.

Every command goes through; when one matches (e.g. the EVALSHA of a named script), the server runs it and
its reply is then either dropped (the connection is cut ``hold_s`` later, as a broken network would) or
delayed by ``hold_s``, past the client's socket timeout. Either way the client never sees the reply, and
redis-py sends the command again on a new connection: the case a state-changing script must survive. Like
``chaos/proxy.py``, but aimed at one command instead of cutting at random.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import threading
from collections.abc import Callable
from urllib.parse import urlparse, urlunparse

import redis

from zsched.engine.scripts import sources

Matcher = Callable[[list[bytes]], bool]


def evalsha_of(name: str) -> Matcher:
    """Matches a call of the script ``lua/<name>.lua`` (redis-py calls scripts by SHA)."""
    sha = hashlib.sha1(sources()[name].encode()).hexdigest().encode()
    return lambda command: len(command) > 1 and command[0].upper() == b"EVALSHA" and command[1].lower() == sha


def command_on(name: str, key: str) -> Matcher:
    """Matches the plain command ``name`` on ``key``."""
    return lambda command: (
        len(command) > 1 and command[0].upper() == name.upper().encode() and command[1] == key.encode()
    )


def parse_commands(buffer: bytearray) -> list[list[bytes]]:
    """The complete RESP commands (arrays of bulk strings) at the head of ``buffer``, removed from it."""
    commands: list[list[bytes]] = []
    while True:
        command, used = _one(bytes(buffer))
        if command is None:
            return commands
        commands.append(command)
        del buffer[:used]


def _one(data: bytes) -> tuple[list[bytes] | None, int]:
    if not data.startswith(b"*"):
        return None, 0
    end = data.find(b"\r\n")
    if end < 0:
        return None, 0
    count, at, parts = int(data[1:end]), end + 2, []
    for _ in range(count):
        end = data.find(b"\r\n", at)
        if end < 0:
            return None, 0
        size = int(data[at + 1 : end])
        start = end + 2
        if len(data) < start + size + 2:
            return None, 0
        parts.append(data[start : start + size])
        at = start + size + 2
    return parts, at


class FaultProxy:
    """Forwards 127.0.0.1:<port> to ``upstream_url``; loses the replies of the next ``times`` commands that
    ``arm``'s matcher picks: ``mode`` "drop" cuts the connection instead of answering, "delay" answers late."""

    def __init__(self, upstream_url: str, mode: str, *, hold_s: float) -> None:
        assert mode in ("drop", "delay")
        self.upstream = urlparse(upstream_url)
        self.mode = mode
        self.hold_s = hold_s
        self.faults = 0  # replies lost so far
        self._matcher: Matcher | None = None
        self._times = 0
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        """The upstream URL with the proxy's address instead of the server's."""
        auth = self.upstream.netloc.rpartition("@")[0]
        netloc = f"{auth}@127.0.0.1:{self.port}" if auth else f"127.0.0.1:{self.port}"
        return urlunparse(self.upstream._replace(netloc=netloc))

    def arm(self, matcher: Matcher, times: int = 1) -> None:
        """Lose the replies of the next ``times`` commands ``matcher`` picks."""
        self._matcher, self._times = matcher, times

    def start(self) -> FaultProxy:
        """Load every script on the server first: a lost NOSCRIPT reply would be a fault that proves nothing."""
        upstream = redis.Redis.from_url(urlunparse(self.upstream))
        for source in sources().values():
            upstream.script_load(source)
        upstream.close()
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()  # its self-pipe (a socket pair) and selector

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.upstream.hostname, self.upstream.port or 6379)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        doomed = asyncio.Event()  # the next reply on this connection is lost
        try:
            await asyncio.gather(self._requests(reader, up_writer, doomed), self._replies(up_reader, writer, doomed))
        except asyncio.CancelledError:
            pass  # stop() ends every connection
        finally:
            for w in (writer, up_writer):
                w.transport.abort()
                self._writers.discard(w)

    async def _requests(self, reader: asyncio.StreamReader, up: asyncio.StreamWriter, doomed: asyncio.Event) -> None:
        buffer = bytearray()
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                buffer += data
                for command in parse_commands(buffer):
                    if self._times > 0 and self._matcher is not None and self._matcher(command):
                        self._times -= 1
                        doomed.set()  # before the command reaches the server, so its reply cannot slip through
                up.write(data)
                await up.drain()
        up.transport.abort()

    async def _replies(self, up: asyncio.StreamReader, writer: asyncio.StreamWriter, doomed: asyncio.Event) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await up.read(65536):
                if doomed.is_set():
                    doomed.clear()
                    self.faults += 1
                    await asyncio.sleep(self.hold_s)
                    if self.mode == "drop":
                        break  # the server ran it; the client gets a cut connection instead of the answer
                    # "delay": the answer comes after the client's socket timeout (it has given up by now)
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
