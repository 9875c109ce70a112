"""S5 memory: INFO used_memory delta per pending notification, beside the payload's own bytes and a bare
ZSET + hash baseline holding the same payloads (no state, no recipient index)."""

from __future__ import annotations

from .common import Context, Figure, chunks, fill, raw_fill, raw_payload, recipients, used_memory

SINGLE_TARGET_B, MANY_TARGET_B = 350.0, 120.0


def zsched_bytes(ctx: Context, prefix: str, count: int, per_call: int, label: str, start: int = 0) -> float:
    """Schedule ``count`` pending notifications under ``prefix`` (``per_call`` recipients a call); bytes each."""
    zs = ctx.scheduler(prefix)
    before = used_memory(zs.redis)
    what = "single-recipient" if per_call == 1 else f"{per_call:,}-recipient"
    with ctx.bar(f"{label} fill {count:,} ({what})", count) as bar:
        fill(
            zs,
            chunks(recipients(count, start), per_call),
            delay_s=7200,
            ops_per_round=500 if per_call == 1 else 5,
            bar=bar,
        )
    after = used_memory(zs.redis)
    zs.close()
    return (after - before) / count


def raw_bytes(ctx: Context, count: int) -> float:
    """Bytes per entry of the bare baseline: ZADD id -> due and HSET id -> payload, nothing else."""
    prefix = ctx.prefix("s5raw")
    r = ctx.redis()
    before = used_memory(r)
    raw_fill(r, prefix, recipients(count), 4_000_000_000_000)
    after = used_memory(r)
    r.close()
    ctx.drop(prefix)
    return (after - before) / count


def payload_bytes() -> int:
    """What the caller's data takes as zsched stores it: the payload JSON plus the recipient id."""
    return len(raw_payload()) + len(recipients(1)[0])


def figure(label: str, count: int, per_call: int, value: float, base: float | None) -> Figure:
    """The S5 row for one measurement."""
    single = per_call == 1
    target = SINGLE_TARGET_B if single else MANY_TARGET_B
    name = f"bytes per pending, {count:,} {'single' if single else '1,000-recipient calls'}"
    return Figure(
        label,
        name,
        value,
        "B",
        baseline=base,
        higher_is_better=False,
        target=target,
        target_text=f"<= {target:g} B",
        note=f"payload itself {payload_bytes()} B",
    )


def measure(ctx: Context, label: str = "S5") -> list[Figure]:
    """Bytes per notification at 100,000 pending, single-recipient and 1,000-recipient calls.

    The 1,000,000 figure is taken by S6, which needs a million pending anyway.
    """
    count = ctx.size(100_000, 2_000)
    base = raw_bytes(ctx, count)
    figures = []
    for per_call in (1, 1000):
        prefix = ctx.prefix(f"s5-{per_call}")
        value = zsched_bytes(ctx, prefix, count, per_call, label)
        ctx.drop(prefix)
        figures.append(figure(label, count, per_call, value, base))
    return figures
