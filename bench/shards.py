"""Shards: S1 (async schedule calls) and S4 (claim + deliver by 1 and 2 worker processes) on one valkey-server and
on a local Redis Cluster of three masters, six partitions each (spread hash tags on the cluster), with how evenly
the masters share the work and the CPU time each notification costs, in the client and in the servers.

Both servers are started here from the bundled valkey-server, private to this scenario (``--redis-url`` is not
used), so their INFO figures hold nothing but this scenario's work."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from zsched import AsyncScheduler
from zsched.connection import connect
from zsched.embedded import EmbeddedServer
from zsched.engine import Core
from zsched.engine.keys import Keyspace, Tags

from .common import MESSAGE, TITLE, Context, Figure, chunks, recipients
from .localcluster import LocalCluster
from .workers import WorkerPool

PARTITIONS = 6
START_S = 4.0
"""How long ahead S4's notifications are due (plus the fill's time): long enough for the workers to start."""
CONCURRENCY = 16  # async callers in flight at once, as in S1
IGNORED = {"info", "dbsize", "cluster", "ping", "hello", "client", "command", "config"}
"""Commands left out of the per-master counts: this scenario's own probes and the clients' handshakes."""


@dataclass
class Topology:
    """One server set under test: its URL, each master's own URL, and the hash tags its partitions get."""

    name: str
    url: str
    nodes: list[str]
    tags: Tags

    def core(self, prefix: str) -> Core:
        """The engine for ``prefix``: six partitions, tags as ``partition_tags=auto`` would choose."""
        return Core(Keyspace(prefix, PARTITIONS, tags=self.tags))


@dataclass
class Snapshot:
    """Per master: CPU seconds used (user + system), commands run, keys held, memory used (bytes)."""

    cpu_s: list[float]
    calls: list[int]
    keys: list[int]
    memory: list[int]


def snapshot(nodes: Sequence[str]) -> Snapshot:
    """Each master's INFO cpu, commandstats and DBSIZE, read directly (not through the cluster client)."""
    found = Snapshot([], [], [], [])
    for url in nodes:
        r = redis.Redis.from_url(url)
        try:
            cpu = r.info("cpu")
            stats = r.info("commandstats")
            found.cpu_s.append(float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]))
            found.calls.append(
                sum(
                    int(v["calls"]) for k, v in stats.items() if k.removeprefix("cmdstat_").split("|")[0] not in IGNORED
                )
            )
            found.keys.append(int(r.dbsize()))
            found.memory.append(int(r.info("memory")["used_memory"]))
        finally:
            r.close()
    return found


@dataclass
class Phase:
    """One measured run on one topology: notifications handled, wall time, client and per-master server cost."""

    count: int
    seconds: float
    client_cpu_s: float
    server_cpu_s: list[float]
    calls: list[int]
    keys: list[int] = field(default_factory=list)
    memory: list[int] = field(default_factory=list)
    """Keys held and memory grown per master at the end (what the run stored, before it was deleted)."""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def client_us(self) -> float:
        return self.client_cpu_s / self.count * 1e6 if self.count else 0.0

    def server_us(self) -> float:
        return sum(self.server_cpu_s) / self.count * 1e6 if self.count else 0.0


def _phase(before: Snapshot, after: Snapshot, count: int, seconds: float, client_cpu_s: float) -> Phase:
    return Phase(
        count,
        seconds,
        client_cpu_s,
        [b - a for a, b in zip(before.cpu_s, after.cpu_s, strict=True)],
        [b - a for a, b in zip(before.calls, after.calls, strict=True)],
        after.keys,
        [b - a for a, b in zip(before.memory, after.memory, strict=True)],
    )


def _flush(top: Topology) -> None:
    """Empty the scenario's own private servers between runs (never a server it did not start)."""
    for url in top.nodes:
        r = redis.Redis.from_url(url)
        r.flushall()
        r.close()


async def _schedule(
    top: Topology, prefix: str, people: list[str], per_call: int, at: datetime | None = None
) -> tuple[Snapshot, Snapshot, float, float]:
    """Schedule ``people`` in calls of ``per_call`` from 16 callers, due ``at`` (default: in an hour). Returns the
    masters' figures before and after, and the wall and client CPU seconds, all after a warm-up call (the layout
    check, script loading, the cluster's slot map), so one-off setup is not counted."""
    zs = AsyncScheduler(connect(top.url, for_asyncio=True), core=top.core(prefix))
    groups = list(chunks(people, per_call))

    async def caller(mine: Sequence[Sequence[str]]) -> None:
        for group in mine:
            if at is None:
                await zs.schedule(group, TITLE, MESSAGE, delay=3600)
            else:
                await zs.schedule(group, TITLE, MESSAGE, at=at)

    try:
        await zs.schedule(["warm-up"], TITLE, MESSAGE, delay=3600)
        before, cpu0, started = snapshot(top.nodes), time.process_time(), time.perf_counter()  # blocking, idle
        await asyncio.gather(*(caller(groups[i::CONCURRENCY]) for i in range(CONCURRENCY)))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu0
        return before, snapshot(top.nodes), seconds, cpu
    finally:
        await zs.close()


def schedule_phase(top: Topology, count: int, per_call: int) -> Phase:
    """S1 async on ``top``: ``count`` notifications in calls of ``per_call`` recipients, 16 callers."""
    before, after, seconds, cpu = asyncio.run(_schedule(top, "zb-sh1", recipients(count), per_call))
    _flush(top)
    return _phase(before, after, count, seconds, cpu)


def _sent(r: Any, core: Core) -> int:
    pipe = r.pipeline(transaction=False)
    for partition in core.keys.partitions:
        pipe.hget(partition.counters, "sent")
    return sum(int(v or 0) for v in pipe.execute())


def drain_phase(top: Topology, count: int, processes: int) -> tuple[Phase, int]:
    """S4 on ``top``: ``count`` notifications all due at one instant, drained by ``processes`` workers; the phase
    and the duplicates. They are due a few seconds ahead, so every worker is ready and idle when they fall due and
    the window opens then (as S4's do, they are all due together). The client CPU is the workers' own, in that
    window."""
    prefix = "zb-sh4"
    core = top.core(prefix)
    due_at = time.time() + START_S + count / 20_000
    asyncio.run(_schedule(top, prefix, recipients(count), 1000, datetime.fromtimestamp(due_at, UTC)))
    r = connect(top.url)
    try:
        with WorkerPool(top.url, prefix, count=processes, partitions=PARTITIONS, tags=top.tags) as pool:
            time.sleep(max(0.0, due_at - time.time() - 0.25))  # read the "before" figures while all is idle
            before, cpu0, first = snapshot(top.nodes), pool.cpu_s(), _sent(r, core)  # first: 0 unless slow starts
            started = time.perf_counter() + max(0.0, due_at - time.time())  # the window opens at the due time
            deadline = started + max(20.0, count / 1000)
            sent = first
            while sent < count and time.perf_counter() < deadline:
                time.sleep(0.02)
                sent = _sent(r, core)
            seconds, cpu = time.perf_counter() - started, pool.cpu_s() - cpu0
            after = snapshot(top.nodes)
            records = pool.stop()
    finally:
        r.close()
    _flush(top)
    if sent - first <= 0:
        raise RuntimeError(f"shards: no notification was sent on {top.name} ({first} before the window opened)")
    return _phase(before, after, sent - first, seconds, cpu), sum(1 for v in records.values() if len(v) > 1)


def _shares(values: Sequence[float]) -> str:
    total = sum(values) or 1
    return "/".join(f"{100 * v / total:.0f}" for v in values) + " %"


def _busiest(values: Sequence[float]) -> float:
    total = sum(values)
    return 100 * max(values) / total if total else 0.0


def figures_for(label: str, what: str, one: Phase, three: Phase, note: str = "") -> list[Figure]:
    """The rows for one measurement on 1 shard and on 3: throughput, CPU per notification, balance."""
    tail = f"; {note}" if note else ""
    return [
        Figure(label, f"{what}, 1 shard", one.rate, "notif/s", note=f"{one.count:,} notifications{tail}"),
        Figure(
            label,
            f"{what}, 3 shards",
            three.rate,
            "notif/s",
            baseline=one.rate,
            note=f"{three.count:,} notifications; baseline: 1 shard{tail}",
        ),
        Figure(
            label,
            f"{what}: client CPU per notification, 3 shards",
            three.client_us(),
            "µs",
            baseline=one.client_us(),
            higher_is_better=False,
            note="baseline: 1 shard",
        ),
        Figure(
            label,
            f"{what}: server CPU per notification, 3 shards",
            three.server_us(),
            "µs",
            baseline=one.server_us(),
            higher_is_better=False,
            note="sum of the masters; per master "
            + "/".join(f"{c / three.count * 1e6:.1f}" for c in three.server_cpu_s)
            + " µs; baseline: 1 shard",
        ),
        Figure(
            label,
            f"{what}: busiest master's share of commands",
            _busiest(three.calls),
            "%",
            higher_is_better=False,
            target_text="ideal 33",
            note=f"shares {_shares(three.calls)} of {sum(three.calls):,} commands (1 shard: {sum(one.calls):,})",
        ),
    ]


def measure(ctx: Context) -> list[Figure]:
    """S1 async and S4 on one valkey-server, then on a local 3-master cluster; rows comparing the two."""
    singles, many, due = ctx.size(8_000, 50), ctx.size(200_000, 2_000), ctx.size(60_000, 600)
    root = Path(tempfile.mkdtemp(prefix="zsched-bench-shards-"))
    results: dict[str, list[Phase]] = {}
    duplicated: dict[str, list[int]] = {}
    single = EmbeddedServer(str(root / "single"), persistent=False).start()
    cluster = LocalCluster(root / "cluster", replicated=False)
    try:
        cluster.start()
        for top in (
            Topology("1 shard", single.url, [single.url], "plain"),
            Topology("3 shards", cluster.url, [f"redis://127.0.0.1:{p}/0" for p in cluster.masters], "spread"),
        ):
            with ctx.bar(f"shards: {top.name}", 4) as bar:
                phases = [schedule_phase(top, many, 1000)]
                bar.update(1)
                phases.append(schedule_phase(top, singles, 1))
                bar.update(1)
                dups = []
                for processes in (1, 2):
                    phase, dup = drain_phase(top, due, processes)
                    phases.append(phase)
                    dups.append(dup)
                    bar.update(1)
            results[top.name], duplicated[top.name] = phases, dups
    finally:
        cluster.stop()
        single.stop()
    one, three = results["1 shard"], results["3 shards"]
    keys, memory = three[0].keys, three[0].memory
    figures = figures_for("S1 shards", "schedule async, 1,000-recipient calls", one[0], three[0], "16 callers")
    figures.append(
        Figure(
            "S1 shards",
            "busiest master's share of keys, 3 shards",
            _busiest(keys),
            "%",
            higher_is_better=False,
            target_text="ideal 33",
            note=f"after the 1,000-recipient calls: shares {_shares(keys)} of {sum(keys):,} keys; "
            f"of the memory they grew: {_shares(memory)} of {sum(memory) / 2**20:.1f} MiB",
        )
    )
    figures += figures_for("S1 shards", "schedule async, single calls", one[1], three[1], "16 callers")
    for i, processes in enumerate((1, 2)):
        what = f"claim + deliver, {processes} worker process{'es' if processes > 1 else ''}"
        twice = f"duplicated {duplicated['1 shard'][i]} (1 shard), {duplicated['3 shards'][i]} (3 shards)"
        figures += figures_for("S4 shards", what, one[2 + i], three[2 + i], twice)
    return figures
