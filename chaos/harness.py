"""What every fault family shares: a server we own, a pool of worker processes, a producer, the figures.

Every loop here is bounded in count and in time; every process is started by us and stopped by PID.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import redis

from zsched import Core, Keyspace, Scheduler, UnavailableError
from zsched.embedded import EmbeddedServer
from zsched.engine.replies import ReadReply
from zsched.engine.views import read_records

from . import ledger
from .worker import RETRY

ROOT = Path(__file__).resolve().parent.parent


class Figures(msgspec.Struct, kw_only=True):
    """One row of the chaos table: what was tried, how often, and what came out."""

    family: str
    tried: str
    faults: int = 0
    scheduled: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    dedup_duplicates: int = 0
    failed: int = 0
    duplicate_bound: int | None = None
    seconds: float = 0.0
    ok: bool = False
    problems: list[str] = msgspec.field(default_factory=list)
    notes: dict[str, Any] = msgspec.field(default_factory=dict)

    def check(self, condition: bool, problem: str) -> None:
        """Record ``problem`` unless ``condition`` holds."""
        if not condition:
            self.problems.append(problem)

    def finish(self, started: float) -> Figures:
        """Close the row: how long it took since ``started`` (monotonic), and ok when nothing went wrong."""
        self.seconds = round(time.monotonic() - started, 1)
        self.ok = not self.problems
        return self


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PlanT = TypeVar("PlanT")


@contextmanager
def own_server(data_dir: Path, *, persistent: bool) -> Iterator[EmbeddedServer]:
    """An embedded valkey-server on a fixed port, so it can be killed and restarted under one URL."""
    server = EmbeddedServer(data_dir, persistent=persistent, port=free_port()).start()
    try:
        yield server
    finally:
        server.stop()


def run_family(
    name: str, plan: PlanT, url: str | None, prefix: str | None, body: Callable[[PlanT, str, str, Path], Figures]
) -> Figures:
    """Run one family's ``body`` in a scratch folder, on ``url`` under a fresh prefix (unless ``prefix`` is
    given), or with no URL on a private server of its own."""
    with tempfile.TemporaryDirectory(prefix=f"chaos-{name}-") as tmp:
        if url is not None:
            return body(plan, url, prefix or f"chaos-{uuid.uuid4().hex[:8]}", Path(tmp))
        with own_server(Path(tmp) / "data", persistent=False) as server:
            return body(plan, server.url, prefix or "chaos", Path(tmp))


def until(predicate: Callable[[], bool], timeout_s: float, every_s: float = 0.1) -> bool:
    """Poll ``predicate`` until it holds or ``timeout_s`` passes; whether it held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every_s)
    return predicate()


class Pool:
    """Chaos worker processes (``python -m chaos.worker``), each journaling to its own file (``chaos.ledger``)."""

    def __init__(
        self, url: str, prefix: str, workdir: Path, *, lease_ms: int = 2000, batch: int = 100, latency_ms: int = 0
    ) -> None:
        self.url, self.prefix, self.workdir = url, prefix, workdir
        self.lease_ms, self.batch, self.latency_ms = lease_ms, batch, latency_ms
        self.live: list[tuple[int, subprocess.Popen[bytes]]] = []
        self.spawned = 0
        self.killed: set[int] = set()
        self.killed_holding = 0
        workdir.mkdir(parents=True, exist_ok=True)

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start one more worker."""
        n = self.spawned
        self.spawned += 1
        with open(self.workdir / f"worker-{n}.err", "wb") as err:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "chaos.worker",
                    "--redis-url",
                    self.url,
                    "--prefix",
                    self.prefix,
                    "--lease-ms",
                    str(self.lease_ms),
                    "--batch",
                    str(self.batch),
                    "--latency-ms",
                    str(self.latency_ms),
                    "--log",
                    str(self.journal(n)),
                ],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        self.live.append((n, process))
        return process

    def journal(self, n: int) -> Path:
        """Where worker ``n`` journals its claims, deliveries and acks."""
        return self.workdir / f"journal-{n}.log"

    def start(self, count: int) -> Pool:
        """Start ``count`` workers."""
        for _ in range(count):
            self.spawn()
        return self

    def kill_random(self, rng: random.Random) -> None:
        """SIGKILL a random worker among those holding a batch (any, when none is) and start a replacement.

        A kill that lands on a worker still starting up tests nothing, and at smoke sizes most would."""
        holders = [i for i, (n, _) in enumerate(self.live) if ledger.holding(self.journal(n))]
        n, victim = self.live.pop(rng.choice(holders) if holders else rng.randrange(len(self.live)))
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.killed.add(n)
        self.killed_holding += ledger.holding(self.journal(n))
        self.spawn()

    def cpu_s(self) -> float:
        """User + system CPU seconds the live workers have used so far."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for _, process in self.live:
            try:
                fields = (Path("/proc") / str(process.pid) / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def log_count(self, text: str) -> int:
        """How many lines of the workers' logs contain ``text``."""
        return sum(path.read_text(errors="replace").count(text) for path in self.workdir.glob("worker-*.err"))

    def deliveries(self) -> list[tuple[int, str]]:
        """Every delivery (id, recipient) any worker ever made, worker by worker, in order."""
        return ledger.deliveries(ledger.read(self.workdir))

    def explain(self, figures: Figures, acks_lost_within: tuple[float, float] | None = None) -> ledger.Explained:
        """Hold every duplicate to a kill or cut in the journals (``ledger.explain``); the bound is theirs."""
        why = ledger.explain(ledger.read(self.workdir), self.killed, acks_lost_within=acks_lost_within)
        figures.duplicate_bound = why.bound
        figures.problems += why.problems[:5]
        if len(why.problems) > 5:
            figures.problems.append(f"... and {len(why.problems) - 5} more unexplained duplicates")
        return why

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM every live worker (they finish their batch), SIGKILL any that do not stop in time."""
        for _, process in self.live:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for n, process in self.live:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                self.killed.add(n)
        self.live = []


def scheduler(url: str, prefix: str) -> Scheduler:
    """A producer-side scheduler with the chaos workers' retry policy."""
    return Scheduler(redis.Redis.from_url(url), core=Core(Keyspace(prefix), retry=RETRY))


def schedule_many(
    zs: Scheduler, count: int, *, delay_s: float = 0.0, chunk: int = 500, tag: str = "n", idempotent: bool = False
) -> list[int]:
    """``count`` notifications, ``chunk`` recipients per schedule call (one script call each)."""
    ids: list[int] = []
    for start in range(0, count, chunk):
        people = [f"{tag}{i}" for i in range(start, min(count, start + chunk))]
        key = f"{tag}-{start}" if idempotent else None
        for attempt in range(50 if idempotent else 1):
            try:
                result = zs.schedule(people, "Chaos", "still here?", delay=delay_s, idempotency_key=key)
            except UnavailableError:
                # safe only with the key: the lost reply may belong to a call that did create them
                if attempt == 49 or not idempotent:
                    raise
                time.sleep(0.05)
                continue
            ids += result.notification_ids
            break
    return ids


def settled(zs: Scheduler) -> Callable[[], bool]:
    """A predicate: nothing pending or processing any more."""

    def done() -> bool:
        try:
            counts = zs.stats().counts
        except Exception:
            return False
        return counts["pending"] == 0 and counts["processing"] == 0

    return done


def statuses(zs: Scheduler, ids: Sequence[int]) -> dict[int, tuple[str, int]]:
    """Each id's (status, attempts) as stored now (a recipient still pending inside its call reads pending);
    ids with no record are left out."""
    p = zs.core.keys.partitions[0]
    out: dict[int, tuple[str, int]] = {}
    for start in range(0, len(ids), 1000):
        chunk = list(ids[start : start + 1000])
        step = read_records(p, len(zs.core.keys.partitions), chunk)
        found = ReadReply.read(zs.scripts[step.name](keys=step.keys, args=step.args)).records
        for nid, (raw, _) in zip(chunk, found, strict=True):
            if raw is not None:
                state = msgspec.json.decode(raw)
                out[nid] = (state["status"], int(state.get("attempts", 0)))
    return out


def tally(
    figures: Figures,
    ids: Sequence[int],
    deliveries: Sequence[tuple[int, str]],
    zs: Scheduler,
    may_lose: frozenset[int] = frozenset(),
) -> None:
    """Fill delivered / lost / duplicated / dedup_duplicates / failed from the delivery logs and Redis.

    ``ids`` is every id a schedule call returned; only those in ``may_lose`` (acknowledged inside a
    durability window a crash may lose) may be lost without a problem. Every chaos notification has its
    own recipient, so a recipient reached under two different ids is a duplicate the de-duplicating
    client (which drops ids it has seen) would still show its user.
    """
    wanted = set(ids)
    delivered = Counter(nid for nid, _ in deliveries)
    seen: set[int] = set()
    shown: dict[str, int] = {}
    dedup_duplicates = 0
    for nid, recipient in deliveries:
        if nid in seen:
            continue  # the client drops an id it has already shown
        seen.add(nid)
        if recipient in shown:
            dedup_duplicates += 1
        shown[recipient] = nid
    now = statuses(zs, ids)
    figures.scheduled = len(wanted)
    figures.delivered = len(seen & wanted)
    figures.duplicated = sum(times - 1 for nid, times in delivered.items() if nid in wanted)
    figures.dedup_duplicates = dedup_duplicates
    figures.check(dedup_duplicates == 0, f"{dedup_duplicates} duplicates got past de-duplication by id")
    figures.failed = sum(1 for status, _ in now.values() if status == "failed")
    not_sent = {nid for nid in wanted if now.get(nid, ("missing", 0))[0] != "sent"}
    lost = (wanted - seen) | not_sent
    figures.lost = len(lost)
    ended_failed = sum(1 for nid in lost - may_lose if now.get(nid, ("missing", 0))[0] == "failed")
    figures.check(
        not lost - may_lose,
        f"{len(lost - may_lose)} notifications never delivered or not marked sent ({ended_failed} of them ended "
        "failed: their attempts ran out)",
    )
    unknown = delivered.keys() - wanted
    figures.check(not unknown, f"{len(unknown)} unknown ids delivered")
    if figures.duplicate_bound is not None:
        figures.check(
            figures.duplicated <= figures.duplicate_bound,
            f"{figures.duplicated} duplicates exceed the bound {figures.duplicate_bound}",
        )
