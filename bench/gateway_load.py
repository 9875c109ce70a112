"""The gateway benchmark's load generator, a process of its own so its CPU is not the gateway's: holds many
WebSockets on loopback with no task per socket (``websockets``' sans-I/O client under an asyncio protocol; a
few tasks open them, many connections each) and notes when each notification arrives.

Driven one line at a time on stdin, answering one line on stdout:

    open N            -> "held N"           (N sockets open in all, each past the gateway's ready message)
    collect N T FILE  -> "got M"            (waits up to T s for N receipts since the last collect; writes
                                             [[id, received_ms, due_ms], ...] as JSON to FILE)
    quit              -> closes every socket and exits

    python -m bench.gateway_load --port 8000 --tokens tokens.tsv   (lines: user<TAB>token)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import resource
import sys
import time
from datetime import datetime
from functools import partial

import msgspec
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

CONCURRENCY = 50
"""Handshakes in flight at once: enough to open 10,000 sockets in seconds, few enough not to be the test."""


class _Pushed(msgspec.Struct):
    type: str
    id: int = 0
    scheduled_at: datetime | None = None


_pushed = msgspec.json.Decoder(_Pushed)


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Receipts:
    """Every notification received since the last ``take``: (id, received wall-clock ms, due ms)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, float, float]] = []
        self.wanted = 0
        self.enough = asyncio.Event()

    def add(self, nid: int, received_ms: float, due_ms: float) -> None:
        """Note one receipt."""
        self.rows.append((nid, received_ms, due_ms))
        if self.wanted and len(self.rows) >= self.wanted:
            self.enough.set()

    def take(self) -> list[tuple[int, float, float]]:
        """What arrived since the last take."""
        rows, self.rows = self.rows, []
        self.enough.clear()
        return rows


class Client(asyncio.Protocol):
    """One socket: the sans-I/O handshake and frame parsing, driven by the event loop's callbacks."""

    def __init__(self, uri: str, token: str, receipts: Receipts) -> None:
        self.ws = ClientProtocol(parse_uri(uri), max_size=1 << 20)
        self.token = token
        self.receipts = receipts
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        request = self.ws.connect()
        request.headers["Authorization"] = f"Bearer {self.token}"
        self.ws.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        now_ms = time.time() * 1000
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if self.ws.handshake_exc is not None and not self.ready.done():
                    self.ready.set_exception(self.ws.handshake_exc)
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self._text(bytes(event.data), now_ms)
        self._flush()

    def _text(self, data: bytes, now_ms: float) -> None:
        message = _pushed.decode(data)
        if message.type == "notification":
            due_ms = message.scheduled_at.timestamp() * 1000 if message.scheduled_at else float("nan")
            self.receipts.add(message.id, now_ms, due_ms)
        elif message.type == "ping":
            self.ws.send_text(b'{"type":"pong"}')
        elif message.type == "ready" and not self.ready.done():
            self.ready.set_result(None)

    def _flush(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(self.ws.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before ready: {exc or self.ws.close_exc}"))

    def close(self) -> None:
        """Send a close frame and drop the connection."""
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(Exception):
                self.ws.send_close(1000)
                self._flush()
            self.transport.close()


async def open_clients(port: int, tokens: list[str], receipts: Receipts, timeout_s: float = 60.0) -> list[Client]:
    """Open one socket per token, ``CONCURRENCY`` handshakes at a time, each waited for until ready."""
    loop = asyncio.get_running_loop()
    uri = f"ws://127.0.0.1:{port}/ws"
    pending = iter(tokens)
    opened: list[Client] = []

    async def opener() -> None:
        for token in pending:
            _, client = await loop.create_connection(partial(Client, uri, token, receipts), "127.0.0.1", port)
            opened.append(client)
            await asyncio.wait_for(client.ready, timeout_s)

    await asyncio.gather(*(opener() for _ in range(CONCURRENCY)))
    return opened


async def run(port: int, tokens: list[str]) -> None:
    """Answer the orchestrator's commands until ``quit``."""
    receipts = Receipts()
    clients: list[Client] = []
    try:
        while line := (await asyncio.to_thread(sys.stdin.readline)).split():
            match line:
                case ["open", count]:
                    clients += await open_clients(port, tokens[len(clients) : int(count)], receipts)
                    # Its 10,000 clients out of the collector's full collections: otherwise each one (half a second
                    # here) holds up the receipts and is counted as the gateway's lateness.
                    gc.collect()
                    gc.freeze()
                    reply = f"held {sum(1 for c in clients if not c.lost)}"
                case ["collect", count, timeout_s, path]:
                    receipts.wanted = int(count)
                    if len(receipts.rows) < receipts.wanted:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(receipts.enough.wait(), float(timeout_s))
                    await asyncio.sleep(0.2)  # late duplicates, if any, arrive now
                    receipts.wanted = 0
                    rows = receipts.take()
                    with open(path, "w") as f:
                        json.dump(rows, f)
                    reply = f"got {len(rows)} lost {sum(1 for c in clients if c.lost)}"
                case ["quit"]:
                    break
                case _:
                    reply = f"error unknown command {' '.join(line)!r}"
            print(reply, flush=True)
    finally:
        for client in clients:
            client.close()
        await asyncio.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    """Entry point: read the tokens, raise the fd limit, answer commands."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", required=True, help="a file of user<TAB>token lines, one socket each")
    args = parser.parse_args(argv)
    with open(args.tokens) as f:
        tokens = [line.rstrip("\n").split("\t")[1] for line in f if line.strip()]
    raise_fd_limit()
    print(f"ready {len(tokens)}", flush=True)
    asyncio.run(run(args.port, tokens))
    return 0


if __name__ == "__main__":
    sys.exit(main())
