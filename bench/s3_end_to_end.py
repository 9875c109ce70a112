"""S3 end to end: notifications due evenly at a fixed rate go through a real ``zsched serve`` process (API,
gateway and worker in one) to real WebSocket clients, ``users`` sockets held open by this process, each
notification addressed to one of them. Lateness = the client's receive wall-clock time - its due time."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import msgspec
from websockets.asyncio.client import ClientConnection, connect

from zsched.cli.progress import Progress
from zsched.web.auth import TokenStore

from .common import Context, Figure, recipients
from .s2_lateness import _schedule_spread, calls_needed, percentile

TARGETS_MS = {1000: 20.0}
WINDOWS = ((100, 10.0), (1000, 10.0))
USERS = 100


class _Pushed(msgspec.Struct):
    type: str
    id: int = 0
    recipient: str = ""
    scheduled_at: datetime | None = None


_pushed = msgspec.json.Decoder(_Pushed)
_Window = tuple[int, float, list[int], float]
"""One measured window: rate per second, seconds, the ids scheduled, how far ahead scheduling finished (ms)."""


@dataclass
class _Receipts:
    """What the clients got: every receipt of every id (raw, so duplicates show), and who got it."""

    received: dict[int, list[float]] = field(default_factory=dict)
    due_ms: dict[int, float] = field(default_factory=dict)
    misrouted: int = 0
    lost_sockets: int = 0
    waiting_for: set[int] = field(default_factory=set)
    all_in: asyncio.Event = field(default_factory=asyncio.Event)
    bar: Progress | None = None


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def serve(url: str, prefix: str) -> Iterator[int]:
    """A real ``zsched serve`` on a free 127.0.0.1 port for the duration; yields the port. SIGTERM stops it."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="zsched-bench-serve-", suffix=".log")[1])
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "zsched.cli",
                "serve",
                "--redis-url",
                url,
                "--prefix",
                prefix,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"zsched serve did not become ready on port {port} (exit code {proc.poll()}); "
                    f"its log ends:\n{log.read_text()[-2000:]}"
                )
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as reply,
            ):
                if reply.status == 200:
                    break
            time.sleep(0.1)
        yield port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.unlink(missing_ok=True)


async def _listen(ws: ClientConnection, user: str, got: _Receipts, ack: bool) -> None:
    """One client: note each notification's receive time, ack it (as the documented client does), answer pings."""
    async for text in ws:
        now_ms = time.time() * 1000
        message = _pushed.decode(text)
        if message.type == "ping":
            await ws.send('{"type":"pong"}')
        if message.type != "notification":
            continue
        times = got.received.setdefault(message.id, [])
        times.append(now_ms)
        if len(times) == 1:  # the client de-duplicates by id; the raw receipts are kept to count duplicates
            if message.scheduled_at is not None:
                got.due_ms[message.id] = message.scheduled_at.timestamp() * 1000
            if message.recipient != user:
                got.misrouted += 1
            if message.id in got.waiting_for:
                got.waiting_for.discard(message.id)
                if got.bar is not None:
                    got.bar.update()
                if not got.waiting_for:
                    got.all_in.set()
        if ack:
            await ws.send(f'{{"type":"ack","id":{message.id}}}')


async def _open(port: int, user: str, token: str) -> ClientConnection:
    ws = await connect(
        f"ws://127.0.0.1:{port}/ws", additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=20
    )
    ready = _pushed.decode(await asyncio.wait_for(ws.recv(), 20))
    if ready.type != "ready":
        raise RuntimeError(f"expected the gateway's ready message first, got {ready.type!r}")
    return ws


async def _drive(
    ctx: Context, prefix: str, port: int, tokens: dict[str, str], windows: Sequence[tuple[int, float]], ack: bool
) -> tuple[list[_Window], _Receipts]:
    """Open one socket per user, then run each window; returns each window and what the clients got."""
    got = _Receipts()
    sockets: list[ClientConnection] = []
    listeners: list[asyncio.Task[None]] = []
    done: list[_Window] = []
    try:
        for start in range(0, len(tokens), 20):  # 20 handshakes at a time: a burst of 100 is not the test
            batch = list(tokens.items())[start : start + 20]
            sockets += await asyncio.gather(*(_open(port, user, token) for user, token in batch))
        users = list(tokens)
        listeners = [asyncio.create_task(_listen(ws, user, got, ack)) for ws, user in zip(sockets, users, strict=True)]
        for rate, seconds in windows:
            count = max(10, int(rate * seconds))
            first_ms = int(time.time() * 1000) + 1000 + calls_needed(rate, count) // 4
            ids = await asyncio.to_thread(_schedule_spread, ctx, prefix, rate, count, first_ms, users)
            lead_ms = first_ms - time.time() * 1000
            got.waiting_for = set(ids) - set(got.received)
            got.all_in = asyncio.Event()
            if not got.waiting_for:
                got.all_in.set()
            with ctx.bar(f"S3 {rate:,}/s to {len(users)} sockets for {seconds:g} s", count) as bar:
                bar.update(count - len(got.waiting_for))
                got.bar = bar
                timeout_s = first_ms / 1000 + seconds + 10 - time.time()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(got.all_in.wait(), max(timeout_s, 1.0))
                await asyncio.sleep(0.2)  # late duplicates, if any, arrive now
                got.bar = None
            done.append((rate, seconds, ids, lead_ms))
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        for task in listeners:
            task.cancel()
        ended = await asyncio.gather(*listeners, return_exceptions=True)
        got.lost_sockets = sum(1 for e in ended if e is not None and not isinstance(e, asyncio.CancelledError))
    return done, got


def measure_windows(
    ctx: Context, windows: Sequence[tuple[int, float]], *, users: int = USERS, ack: bool = True
) -> list[Figure]:
    """Lateness percentiles and delivery counts for each (rate per second, seconds) window, through one
    ``zsched serve`` and ``users`` connected sockets."""
    prefix = ctx.prefix("s3")
    people = recipients(users)
    r = ctx.redis()
    store = TokenStore(prefix)
    tokens = {user: store.create(r, user)[0] for user in people}
    r.close()
    with serve(ctx.url, prefix) as port:
        done, got = asyncio.run(_drive(ctx, prefix, port, tokens, windows, ack))
    ctx.drop(prefix)
    return [f for window in done for f in _figures(ctx, window, got, users, ack)]


def _figures(ctx: Context, window: _Window, got: _Receipts, users: int, ack: bool) -> list[Figure]:
    rate, seconds, ids, lead_ms = window
    received, due_ms = got.received, got.due_ms
    expected = set(ids)
    once = sum(1 for i in expected if len(received.get(i, ())) == 1)
    missing = sum(1 for i in expected if i not in received)
    duplicated = sum(1 for i in expected if len(received.get(i, ())) > 1)
    raw_duplicates = sum(len(received.get(i, ())) - 1 for i in expected if i in received)
    late = [received[i][0] - due_ms[i] for i in expected if i in received and i in due_ms]
    p50, p99, worst = percentile(late, 50), percentile(late, 99), max(late, default=float("nan"))
    counts = {
        "expected": len(ids),
        "once": once,
        "missing": missing,
        "duplicated": duplicated,
        "raw_duplicates": raw_duplicates,
        "misrouted": got.misrouted,
        "lost_sockets": got.lost_sockets,
        "users": users,
        "ack": ack,
    }
    note = (
        f"p50 {p50:.2f} ms, max {worst:.1f} ms; {once:,} once, {missing} missing, {duplicated} duplicated"
        + ("" if lead_ms > 0 else f"; scheduling overran the window start by {-lead_ms:.0f} ms")
        + (f"; {got.lost_sockets} sockets dropped by the server" if got.lost_sockets else "")
        + (f"; {got.misrouted} to the wrong user" if got.misrouted else "")
    )
    worker_only = next(
        (f.value for f in ctx.figures if f.scenario == "S2" and f.name == f"lateness p99 at {rate:,}/s"), None
    )
    target = TARGETS_MS.get(rate)
    return [
        Figure(
            "S3",
            f"lateness p99 at {rate:,}/s, {users} sockets",
            p99,
            "ms",
            baseline=worker_only,
            higher_is_better=False,
            target=target,
            target_text=f"<= {target:g} ms" if target else "",
            note=note,
            extra={"p50_ms": p50, "p99_ms": p99, "max_ms": worst, **counts},
        ),
        Figure(
            "S3",
            f"missing + duplicated at {rate:,}/s",
            missing + duplicated,
            "notif",
            higher_is_better=False,
            target=0,
            target_text="0",
            note=f"{len(ids):,} due over {seconds:g} s; {raw_duplicates} raw duplicate receipts",
        ),
    ]


def measure(ctx: Context) -> list[Figure]:
    """100/s and 1,000/s (target p99 <= 20 ms) to 100 connected users, through ``zsched serve``."""
    return measure_windows(ctx, [(rate, max(1.0, seconds * min(1.0, ctx.scale))) for rate, seconds in WINDOWS])
