"""S2 lateness: notifications due evenly over a window at a fixed rate, delivered by one real worker process
(``bench.worker_proc``: zsched's Worker + InboxDelivery); lateness = time it left - its due time."""

from __future__ import annotations

import time
from collections.abc import Sequence

from zsched.connection import queue_step
from zsched.models import ms_to_datetime

from .common import MESSAGE, TITLE, Context, Figure, recipients
from .workers import WorkerPool

TARGETS_MS = {100: 2.0, 1000: 5.0}


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def _schedule_spread(
    ctx: Context, prefix: str, rate: int, count: int, first_ms: int, users: Sequence[str] = ()
) -> list[int]:
    """``count`` notifications due ``1/rate`` apart from ``first_ms``: one schedule call per due millisecond
    (several recipients when the rate exceeds 1,000/s), pipelined 500 calls a round trip. Each goes to its
    own recipient, or, given ``users``, to ``users`` in turn."""
    zs = ctx.scheduler(prefix)
    people = [users[i % len(users)] for i in range(count)] if users else recipients(count)
    by_ms: dict[int, list[str]] = {}
    for i, person in enumerate(people):
        by_ms.setdefault(first_ms + i * 1000 // rate, []).append(person)
    calls = list(by_ms.items())
    ids: list[int] = []
    for start in range(0, len(calls), 500):
        ops = [
            zs.core.schedule(group, TITLE, MESSAGE, at=ms_to_datetime(due_ms))
            for due_ms, group in calls[start : start + 500]
        ]
        pipe = zs.redis.pipeline(transaction=False)
        for op in ops:
            for step in next(op):
                queue_step(pipe, zs.scripts, step)
        for op, reply in zip(ops, pipe.execute(), strict=True):
            try:
                op.send([reply])
            except StopIteration as done:
                ids += done.value.notification_ids
    zs.close()
    return ids


def calls_needed(rate: int, count: int) -> int:
    """How many schedule calls ``_schedule_spread`` makes (one per distinct due millisecond)."""
    return min(count, count * 1000 // rate + 1)


def measure_rate(ctx: Context, rate: int, seconds: float, label: str = "S2") -> list[Figure]:
    """Lateness percentiles and delivery counts at ``rate`` notifications per second for ``seconds``."""
    count = max(10, int(rate * seconds))
    prefix = ctx.prefix(f"s2-{rate}")
    with WorkerPool(ctx.url, prefix, count=1) as pool:
        first_ms = int(time.time() * 1000) + 1000 + calls_needed(rate, count) // 4  # ~4,000 calls/s, loaded
        ids = _schedule_spread(ctx, prefix, rate, count, first_ms)
        lead_ms = first_ms - time.time() * 1000
        with ctx.bar(f"{label} {rate:,}/s for {seconds:g} s", count) as bar:
            r = ctx.redis()
            counters = f"{prefix}:{{p0}}:counters"
            deadline = first_ms / 1000 + seconds + 10
            sent = 0
            while sent < count and time.time() < deadline:
                time.sleep(0.05)
                now_sent = int(r.hget(counters, "sent") or 0)
                bar.update(now_sent - sent)
                sent = now_sent
            r.close()
        time.sleep(0.1)
        records = pool.stop()
    ctx.drop(prefix)
    expected = set(ids)
    once = sum(1 for i in expected if len(records.get(i, ())) == 1)
    missing = sum(1 for i in expected if i not in records)
    duplicated = sum(1 for i in expected if len(records.get(i, ())) > 1)
    late = [records[i][0] for i in expected if i in records]
    p50, p99, worst = percentile(late, 50), percentile(late, 99), max(late, default=float("nan"))
    counts = {"expected": count, "once": once, "missing": missing, "duplicated": duplicated}
    note = f"p50 {p50:.2f} ms, max {worst:.1f} ms; {once:,} once, {missing} missing, {duplicated} duplicated" + (
        "" if lead_ms > 0 else f"; scheduling overran the window start by {-lead_ms:.0f} ms"
    )
    target = TARGETS_MS.get(rate)
    return [
        Figure(
            label,
            f"lateness p99 at {rate:,}/s",
            p99,
            "ms",
            higher_is_better=False,
            target=target,
            target_text=f"<= {target:g} ms" if target else "stretch",
            note=note,
            extra={"p50_ms": p50, "p99_ms": p99, "max_ms": worst, **counts},
        ),
        Figure(
            label,
            f"missing + duplicated at {rate:,}/s",
            missing + duplicated,
            "notif",
            higher_is_better=False,
            target=0,
            target_text="0",
            note=f"{count:,} due over {seconds:g} s",
        ),
    ]


def measure(ctx: Context) -> list[Figure]:
    """100/s and 1,000/s (targets), and 10,000/s (stretch)."""
    figures: list[Figure] = []
    for rate, seconds in ((100, 10.0), (1000, 8.0), (10_000, 3.0)):
        figures += measure_rate(ctx, rate, max(1.0, seconds * min(1.0, ctx.scale)))
    return figures
