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
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import redis

from zsched import Core, Keyspace, Scheduler, UnavailableError
from zsched.embedded import EmbeddedServer

from .worker import RETRY

ROOT = Path(__file__).resolve().parent.parent
TERMINAL = ("sent", "failed", "cancelled")


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


@contextmanager
def own_server(data_dir: Path, *, persistent: bool) -> Iterator[EmbeddedServer]:
    """An embedded valkey-server on a fixed port, so it can be killed and restarted under one URL."""
    server = EmbeddedServer(data_dir, persistent=persistent, port=free_port()).start()
    try:
        yield server
    finally:
        server.stop()


def until(predicate: Callable[[], bool], timeout_s: float, every_s: float = 0.1) -> bool:
    """Poll ``predicate`` until it holds or ``timeout_s`` passes; whether it held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every_s)
    return predicate()


class Pool:
    """Chaos worker processes (``python -m chaos.worker``), each logging its deliveries to its own file."""

    def __init__(
        self, url: str, prefix: str, workdir: Path, *, lease_ms: int = 2000, batch: int = 100, latency_ms: int = 0
    ) -> None:
        self.url, self.prefix, self.workdir = url, prefix, workdir
        self.lease_ms, self.batch, self.latency_ms = lease_ms, batch, latency_ms
        self.live: list[subprocess.Popen[bytes]] = []
        self.spawned = 0
        self.killed = 0
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
                    str(self.workdir / f"deliveries-{n}.log"),
                ],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        self.live.append(process)
        return process

    def start(self, count: int) -> Pool:
        """Start ``count`` workers."""
        for _ in range(count):
            self.spawn()
        return self

    def kill_random(self, rng: random.Random) -> None:
        """SIGKILL one live worker at random and start a replacement."""
        victim = self.live.pop(rng.randrange(len(self.live)))
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.killed += 1
        self.spawn()

    def cpu_s(self) -> float:
        """User + system CPU seconds the live workers have used so far."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for process in self.live:
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
        out: list[tuple[int, str]] = []
        for path in sorted(self.workdir.glob("deliveries-*.log")):
            for line in path.read_text().splitlines():
                nid, _, recipient = line.partition(" ")
                out.append((int(nid), recipient))
        return out

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM every live worker (they finish their batch), SIGKILL any that do not stop in time."""
        for process in self.live:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in self.live:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
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
    """Each id's (status, attempts) as stored now; ids with no record are left out."""
    p = zs.core.keys.partitions[0]
    out: dict[int, tuple[str, int]] = {}
    for start in range(0, len(ids), 1000):
        chunk = list(ids[start : start + 1000])
        for nid, raw in zip(chunk, zs.redis.hmget(p.state, chunk), strict=True):
            if raw is not None:
                state = msgspec.json.decode(raw)
                out[nid] = (state["status"], int(state.get("attempts", 0)))
    return out


def tally(
    figures: Figures,
    ids: Sequence[int],
    deliveries: Sequence[tuple[int, str]],
    zs: Scheduler,
    known: set[int] | None = None,
) -> None:
    """Fill delivered / lost / duplicated / dedup_duplicates / failed from the delivery logs and Redis.

    Every chaos notification has its own recipient, so a recipient reached under two different ids is
    a duplicate the de-duplicating client (which drops ids it has seen) would still show its user.
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
    figures.lost = len((wanted - seen) | not_sent)
    figures.check(figures.lost == 0, f"{figures.lost} notifications never delivered or not marked sent")
    unknown = delivered.keys() - (known if known is not None else wanted)
    figures.check(not unknown, f"{len(unknown)} unknown ids delivered")
    if figures.duplicate_bound is not None:
        figures.check(
            figures.duplicated <= figures.duplicate_bound,
            f"{figures.duplicated} duplicates exceed the bound {figures.duplicate_bound}",
        )


def rank(status: str) -> int:
    """Order of the state machine: pending and processing cycle (retry, reap), terminal states are final."""
    return 1 if status in TERMINAL else 0


def backwards(before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]]) -> list[str]:
    """Every id whose status or attempts moved backwards between two snapshots."""
    problems = []
    for nid, (status, attempts) in before.items():
        later = after.get(nid)
        if later is None:
            problems.append(f"{nid}: {status} record vanished")
        elif rank(later[0]) < rank(status) or (status in TERMINAL and later[0] != status) or later[1] < attempts:
            problems.append(f"{nid}: {status}/{attempts} became {later[0]}/{later[1]}")
    return problems
