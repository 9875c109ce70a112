"""A loopback TCP proxy in front of Redis that cuts connections in the middle of a command.

A connection picked for a cut is aborted (an RST both ways) at its next command, half the time
before the command reaches the server (the request is lost) and half the time after the server
answered (it ran, and the reply is lost, the case retries must survive). A picked connection that
sends nothing for ``IDLE_CUT_S`` (a pub/sub one) is cut idle, and counted apart: only mid-command
cuts prove the clients met a fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from urllib.parse import ParseResult, urlparse, urlunparse

from .harness import free_port

IDLE_CUT_S = 1.0


class _Link:
    """One proxied connection: both writers, and whether (and how) it is to be cut."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.writers = (client, upstream)
        self.doom: str | None = None  # "request" or "reply"
        self.doomed_at = 0.0
        self.reply_due = False  # the doomed request went through; cut when its reply comes back

    def abort(self) -> None:
        for writer in self.writers:
            writer.transport.abort()


class CuttingProxy:
    """Forwards 127.0.0.1:<own port> to ``upstream_url``; every ``cut_every_ms`` it dooms one live connection."""

    def __init__(self, upstream_url: str, *, cut_every_ms: tuple[int, int] = (50, 300), seed: int = 6) -> None:
        self.upstream = urlparse(upstream_url)
        self.port = free_port()
        self.cut_every_ms = cut_every_ms
        self.rng = random.Random(seed)
        self.cuts = 0
        self.cuts_mid_command = 0
        self.connections = 0
        self.cutting = threading.Event()
        self._links: list[_Link] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._cutter: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """The upstream URL (credentials, database) with the proxy's address instead of the server's."""
        return through(self.upstream, self.port)

    def start(self) -> CuttingProxy:
        """Listen and start the cutter (cutting begins when ``cutting`` is set)."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self._cutter = asyncio.create_task(self._cut_forever())

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream.port or 6379)
        except OSError:
            client_writer.transport.abort()
            return
        self.connections += 1
        link = _Link(client_writer, up_writer)
        self._links.append(link)
        try:
            await asyncio.gather(self._requests(client_reader, link), self._replies(up_reader, link))
        finally:
            if link in self._links:
                self._links.remove(link)
            link.abort()

    async def _requests(self, reader: asyncio.StreamReader, link: _Link) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                if link.doom == "request":
                    self._cut(link, mid_command=True)
                    return
                link.writers[1].write(data)
                await link.writers[1].drain()
                if link.doom == "reply":
                    link.reply_due = True
        link.abort()

    async def _replies(self, reader: asyncio.StreamReader, link: _Link) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                if link.reply_due:
                    self._cut(link, mid_command=True)
                    return
                link.writers[0].write(data)
                await link.writers[0].drain()
        link.abort()

    def _cut(self, link: _Link, *, mid_command: bool) -> None:
        if link in self._links:
            self._links.remove(link)
            self.cuts += 1
            self.cuts_mid_command += mid_command
        link.abort()

    async def _cut_forever(self) -> None:
        low, high = self.cut_every_ms
        while True:
            await asyncio.sleep(self.rng.uniform(low, high) / 1000)
            now = time.monotonic()
            for link in [k for k in self._links if k.doom and now - k.doomed_at > IDLE_CUT_S]:
                self._cut(link, mid_command=False)
            spared = [k for k in self._links if not k.doom]
            if self.cutting.is_set() and spared:
                link = spared[self.rng.randrange(len(spared))]
                link.doom, link.doomed_at = self.rng.choice(("request", "reply")), now

    def stop(self) -> None:
        """Close the listener and every connection, and stop the proxy's thread."""

        async def close() -> None:
            if self._cutter is not None:
                self._cutter.cancel()
            if self._server is not None:
                self._server.close()
            for link in self._links:
                link.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # so none is pending when the loop closes

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()  # its self-pipe (a socket pair) and selector


def through(upstream: ParseResult, port: int) -> str:
    """``upstream`` (credentials, database) with 127.0.0.1:``port`` instead of the server's address."""
    auth = upstream.netloc.rpartition("@")[0]
    netloc = f"{auth}@127.0.0.1:{port}" if auth else f"127.0.0.1:{port}"
    return urlunparse(upstream._replace(netloc=netloc))
