"""A loopback TCP proxy in front of Redis that cuts connections at random (an RST, mid-command or not)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading

from .harness import free_port


class CuttingProxy:
    """Forwards 127.0.0.1:``port`` to the upstream port; every ``cut_every_ms`` it aborts one live connection."""

    def __init__(self, upstream_port: int, *, cut_every_ms: tuple[int, int] = (50, 300), seed: int = 6) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.cut_every_ms = cut_every_ms
        self.rng = random.Random(seed)
        self.cuts = 0
        self.connections = 0
        self.cutting = threading.Event()
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._cutter: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """The redis:// URL that goes through the proxy."""
        return f"redis://127.0.0.1:{self.port}/0"

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
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.transport.abort()
            return
        self.connections += 1
        pair = (client_writer, up_writer)
        self._pairs.append(pair)
        try:
            await asyncio.gather(_pipe(client_reader, up_writer), _pipe(up_reader, client_writer))
        finally:
            if pair in self._pairs:
                self._pairs.remove(pair)
            for writer in pair:
                writer.transport.abort()

    async def _cut_forever(self) -> None:
        low, high = self.cut_every_ms
        while True:
            await asyncio.sleep(self.rng.uniform(low, high) / 1000)
            if self.cutting.is_set() and self._pairs:
                pair = self._pairs.pop(self.rng.randrange(len(self._pairs)))
                for writer in pair:
                    writer.transport.abort()
                self.cuts += 1

    def stop(self) -> None:
        """Close the listener and every connection, and stop the proxy's thread."""

        async def close() -> None:
            if self._cutter is not None:
                self._cutter.cancel()
            if self._server is not None:
                self._server.close()
            for pair in self._pairs:
                for writer in pair:
                    writer.transport.abort()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
