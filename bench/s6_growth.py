"""S6 cost growth: schedule and claim + deliver throughput with 1,000,000 already pending versus 1,000,
on the same keys. Filling the million also gives S5 its 1,000,000-pending memory figure."""

from __future__ import annotations

import time

from . import s4_claim, s5_memory
from .common import MESSAGE, TITLE, Context, Figure, chunks, fill, recipients


def _rates(ctx: Context, prefix: str, label: str) -> dict[str, float]:
    zs = ctx.scheduler(prefix)
    out: dict[str, float] = {}
    for name, count, per_call in (
        ("schedule, single calls", ctx.size(3_000, 50), 1),
        ("schedule, 1,000-recipient calls", ctx.size(20_000, 1_000), 1000),
    ):
        people = recipients(count, 5_000_000)
        with ctx.bar(f"{label} {name}", count) as bar:
            started = time.perf_counter()
            for group in chunks(people, per_call):
                zs.schedule(group, TITLE, MESSAGE, delay=3600)
                bar.update(len(group))
            out[name] = count / (time.perf_counter() - started)
    zs.close()
    due = ctx.size(30_000, 500)
    s4_claim.make_due(ctx, prefix, due, label)
    out["claim + deliver, 1 worker"], _ = s4_claim.drain(ctx, prefix, due, 1, label)
    return out


def measure(ctx: Context, label: str = "S6") -> list[Figure]:
    """Throughputs at 1,000 and at 1,000,000 pending; the ratio is high over low (target >= 0.8)."""
    small, big = ctx.size(1_000, 100), ctx.size(1_000_000, 5_000)
    prefix = ctx.prefix("s6")
    zs = ctx.scheduler(prefix)
    fill(zs, chunks(recipients(small), 1), delay_s=7200)
    zs.close()
    low = _rates(ctx, prefix, f"{label} @{small:,}")
    per_b = s5_memory.zsched_bytes(ctx, prefix, big - small, 1, "S5/S6", start=small)
    high = _rates(ctx, prefix, f"{label} @{big:,}")
    ctx.drop(prefix)
    base_b = s5_memory.raw_bytes(ctx, big)
    figures = [s5_memory.figure("S5", big, 1, per_b, base_b)]
    for name in low:
        figures.append(
            Figure(
                label,
                f"{name} @{big:,} pending",
                high[name],
                "notif/s",
                baseline=low[name],
                target=0.8,
                target_text=">= 0.8 x @1,000",
                target_on_ratio=True,
                note=f"ratio column: vs the same with {small:,} pending",
            )
        )
    return figures
