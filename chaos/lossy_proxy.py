"""A loopback TCP proxy in front of Redis that loses replies of commands that ran.

Every command reaches the server, and a fraction of the replies never reach the client: dropped (the
connection is cut once the server has answered) or delayed past the client's socket timeout. Either way the
command ran and its caller does not know it: redis-py sends it again, which a script that changes state must
answer with its first run's outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import threading
from collections import Counter
from urllib.parse import urlparse

from zsched.engine.scripts import sources

from .harness import free_port
from .proxy import through


def _handshake(command: list[bytes]) -> bool:
    """Whether ``command`` sets up a new connection (spared: its lost reply would fail a resend, not test one)."""
    return bool(command) and command[0].upper() in (b"HELLO", b"CLIENT", b"AUTH", b"SELECT", b"READONLY")


def take_commands(buffer: bytearray) -> list[list[bytes]]:
    """The complete RESP commands (arrays of bulk strings) at the head of ``buffer``, removed from it."""
    commands: list[list[bytes]] = []
    while buffer.startswith(b"*"):
        end = buffer.find(b"\r\n")
        if end < 0:
            break
        at, parts = end + 2, []
        for _ in range(int(buffer[1:end])):
            end = buffer.find(b"\r\n", at)
            if end < 0 or len(buffer) < end + 2 + int(buffer[at + 1 : end]) + 2:
                return commands
            size = int(buffer[at + 1 : end])
            parts.append(bytes(buffer[end + 2 : end + 2 + size]))
            at = end + 2 + size + 2
        commands.append(parts)
        del buffer[:at]
    return commands


class LossyProxy:
    """Forwards 127.0.0.1:<own port> to ``upstream_url``; while ``losing`` is set, the fraction ``drop`` of the
    replies of each kind of command (``SET``, ``lua claim``, ...) is dropped and the fraction ``delay`` is held
    ``hold_s`` (past the clients' socket timeout), spread evenly from a random phase, so every kind sent
    ``1 / drop`` times meets both faults. A command whose reply was lost is not lost again when it is sent
    again, and a new connection's setup (HELLO, CLIENT SETINFO, ...) is spared, so each loss costs its caller
    one resend, never all of them."""

    def __init__(
        self, upstream_url: str, *, drop: float = 0.01, delay: float = 0.01, hold_s: float = 1.5, seed: int = 6
    ) -> None:
        self.upstream = urlparse(upstream_url)
        self.port = free_port()
        self.drop, self.delay, self.hold_s = drop, delay, hold_s
        self.rng = random.Random(seed)
        self.commands = 0
        self.lost: Counter[str] = Counter()  # "dropped <what>" / "delayed <what>": replies lost, by command
        self.losing = threading.Event()
        self._scripts = {hashlib.sha1(text.encode()).hexdigest().encode(): name for name, text in sources().items()}
        # Digests of commands whose reply was lost: their next send is spared. redis-py resends a command three
        # times; losing them all is an outage (the outage row covers it), not this fault.
        self._resent: set[bytes] = set()
        self._due: dict[str, list[float]] = {}  # per kind of command: the drop and delay accumulators
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """The upstream URL with the proxy's address instead of the server's."""
        return through(self.upstream, self.port)

    def faults(self, kind: str) -> int:
        """Replies lost so far, ``kind`` "dropped" or "delayed"."""
        return sum(n for what, n in self.lost.items() if what.startswith(f"{kind} "))

    def start(self) -> LossyProxy:
        """Listen (losing begins when ``losing`` is set)."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream.port or 6379)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, up_writer}
        fates: list[str] = []  # what happens to the next reply on this connection, decided as its command passes
        try:
            await asyncio.gather(
                self._requests(client_reader, up_writer, fates), self._replies(up_reader, client_writer, fates)
            )
        finally:
            for writer in (client_writer, up_writer):
                writer.transport.abort()
                self._writers.discard(writer)

    def _what(self, command: list[bytes]) -> str:
        name = command[0].decode(errors="replace").upper() if command else "?"
        if name == "EVALSHA" and len(command) > 1:
            return f"lua {self._scripts.get(command[1].lower(), 'unknown script')}"
        return name

    def _fate(self, command: list[bytes]) -> str:
        """What becomes of this command's reply: "dropped <what>", "delayed <what>" or "" (it is answered)."""
        digest = hashlib.sha1(b"\0".join(command)).digest()
        if not self.losing.is_set() or _handshake(command) or digest in self._resent:
            self._resent.discard(digest)  # the resend of a command whose reply was lost goes through
            return ""
        what = self._what(command)
        if what not in self._due:  # each kind starts at a random phase
            self._due[what] = [self.rng.random(), self.rng.random()]
        due = self._due[what]
        due[0] += self.drop
        due[1] += self.delay
        for i, kind in enumerate(("dropped", "delayed")):
            if due[i] >= 1:
                due[i] -= 1
                self._resent.add(digest)
                return f"{kind} {what}"
        return ""

    async def _requests(self, reader: asyncio.StreamReader, up: asyncio.StreamWriter, fates: list[str]) -> None:
        buffer = bytearray()
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                buffer += data
                for command in take_commands(buffer):
                    self.commands += 1
                    fate = "" if fates else self._fate(command)
                    if fate:
                        fates.append(fate)  # before the command reaches the server: its reply cannot slip through
                up.write(data)
                await up.drain()
        up.transport.abort()

    async def _replies(self, up: asyncio.StreamReader, writer: asyncio.StreamWriter, fates: list[str]) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await up.read(65536):
                if fates:
                    fate = fates.pop()
                    self.lost[fate] += 1
                    if fate.startswith("dropped"):
                        break  # the server ran it; the client gets a cut connection instead of the answer
                    await asyncio.sleep(self.hold_s)  # the client has given up on it by now
                writer.write(data)
                await writer.drain()
        writer.transport.abort()

    def stop(self) -> None:
        """Close the listener and every connection, and stop the proxy's thread."""

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()  # its self-pipe (a socket pair) and selector
