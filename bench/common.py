"""What every scenario shares: the figure it reports, a progress bar, the payload, and a fast filler."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from zsched import Scheduler
from zsched.cli.progress import Progress
from zsched.connection import queue_step
from zsched.engine import Core
from zsched.engine.keys import Keyspace

TITLE = "Quarterly review meeting moved to room B"  # 40 characters
MESSAGE = (
    "The quarterly review starts at 10:00 in room 4B instead of 2A. Bring the updated figures, "
    "and the slides for section 3a."
)  # 120 characters
assert len(TITLE) == 40 and len(MESSAGE) == 120


@dataclass
class Figure:
    """One measured number, with the raw baseline it is compared to and the target it is judged by."""

    scenario: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    higher_is_better: bool = True
    target: float | None = None
    target_text: str = ""
    target_on_ratio: bool = False
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """zsched's figure over the raw baseline's (for costs, baseline over zsched): 1.0 is parity."""
        if self.baseline is None or not self.baseline or not self.value:
            return None
        return self.value / self.baseline if self.higher_is_better else self.baseline / self.value

    @property
    def status(self) -> str:
        """'pass', 'short', or '' when the figure has no target."""
        judged = self.ratio if self.target_on_ratio else self.value
        if self.target is None or judged is None:
            return ""
        ok = judged >= self.target if self.higher_is_better or self.target_on_ratio else judged <= self.target
        return "pass" if ok else "short"


@dataclass
class Context:
    """What a scenario runs against: the server, how big to make things, whether to draw progress."""

    url: str
    scale: float = 1.0
    progress: bool = True
    prefixes: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    """What this run measured so far (S3 sets S2's worker-only lateness beside its own)."""
    sustain: tuple[int, float] | None = None
    """The gateway scenario's sustained rate and seconds, when not its defaults (``--sustain``)."""

    def size(self, full: int, least: int = 1) -> int:
        """``full`` scaled by ``scale`` (never below ``least``)."""
        return max(least, int(full * self.scale))

    def prefix(self, name: str) -> str:
        """A fresh key prefix for one measurement; ``cleanup`` deletes it afterwards."""
        value = f"zb-{name}-{uuid.uuid4().hex[:6]}"
        self.prefixes.append(value)
        return value

    def redis(self) -> redis.Redis:
        """A new sync connection."""
        return redis.Redis.from_url(self.url)

    def scheduler(self, prefix: str) -> Scheduler:
        """A sync scheduler under ``prefix``."""
        return Scheduler(self.redis(), core=Core(Keyspace(prefix)))

    def bar(self, label: str, total: int) -> Progress:
        """A progress bar for ``total`` units of work."""
        return Progress(label, total, enabled=self.progress)

    def drop(self, prefix: str) -> None:
        """Delete every key under ``prefix`` (only ours: never FLUSHALL a shared server)."""
        r = self.redis()
        batch: list[bytes] = []
        for key in r.scan_iter(match=f"{prefix}:*", count=5000):
            batch.append(key)
            if len(batch) >= 1000:
                r.unlink(*batch)
                batch.clear()
        if batch:
            r.unlink(*batch)
        r.close()
        if prefix in self.prefixes:
            self.prefixes.remove(prefix)

    def cleanup(self) -> None:
        """Drop every prefix this run created."""
        for prefix in list(self.prefixes):
            self.drop(prefix)


def recipients(count: int, start: int = 0) -> list[str]:
    """Recipient ids like a real app's user ids."""
    return [str(100_000 + i) for i in range(start, start + count)]


def chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """``items`` in consecutive slices of ``size``."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def fill(
    zs: Scheduler,
    people: Iterable[Sequence[str]],
    *,
    delay_s: float = 3600.0,
    ops_per_round: int = 500,
    bar: Progress | None = None,
) -> int:
    """Schedule one call per group in ``people`` through zsched's own core, pipelining many calls per round
    trip; the Redis work per call is exactly a ``schedule`` call's, only the round trips are shared."""
    created = 0
    groups = list(people)
    for start in range(0, len(groups), ops_per_round):
        ops = [zs.core.schedule(g, TITLE, MESSAGE, delay=delay_s) for g in groups[start : start + ops_per_round]]
        pipe = zs.redis.pipeline(transaction=False)
        sizes = []
        for op in ops:
            steps = next(op)
            sizes.append(len(steps))
            for step in steps:
                queue_step(pipe, zs.scripts, step)
        replies = pipe.execute()
        at = 0
        for op, n in zip(ops, sizes, strict=True):
            try:
                op.send(replies[at : at + n])
            except StopIteration as done:
                created += done.value.count
            at += n
        if bar is not None:
            bar.update(sum(len(g) for g in groups[start : start + ops_per_round]))
    return created


def raw_fill(
    r: redis.Redis, prefix: str, people: Sequence[str], due_ms: int, *, per_round: int = 1000, first_id: int = 1
) -> None:
    """The raw baseline's storage: ZADD id -> due and HSET id -> payload JSON, pipelined, nothing else."""
    body = raw_payload()
    for start in range(0, len(people), per_round):
        pipe = r.pipeline(transaction=False)
        for i in range(start, min(start + per_round, len(people))):
            nid = first_id + i
            pipe.zadd(f"{prefix}:due", {str(nid): due_ms})
            pipe.hset(f"{prefix}:payloads", nid, body)
        pipe.execute()


def raw_payload() -> bytes:
    """The same JSON a zsched payload holds, for the raw baseline to store."""
    from zsched.models import Payload, json_encoder

    return json_encoder.encode(Payload(TITLE, MESSAGE))


def server_info(url: str) -> dict[str, str]:
    """The server's name and version, from INFO server."""
    info = redis.Redis.from_url(url).info("server")
    name = "valkey" if "valkey_version" in info else "redis"
    return {
        "server": name,
        "version": str(info.get("valkey_version") or info.get("redis_version")),
        "redis_version": str(info.get("redis_version")),
    }


def used_memory(r: redis.Redis) -> int:
    """INFO used_memory, after letting lazy frees settle."""
    for _ in range(400):  # dropping a million-entry prefix frees in the background for seconds
        info = r.info("memory")
        if not int(info.get("lazyfree_pending_objects", 0)):
            break
        time.sleep(0.05)
    return int(r.info("memory")["used_memory"])
