"""S4 claim + deliver throughput: already-due notifications drained by 1 and by 2 real worker processes,
beside a raw baseline draining the same count from a bare ZSET + hash with a minimal EVALSHA claim of 100."""

from __future__ import annotations

import time

from zsched.cli.progress import Progress

from .common import Context, Figure, chunks, fill, raw_fill, recipients
from .workers import WorkerPool

RAW_CLAIM = """
local ids = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then return {} end
redis.call('ZREM', KEYS[1], unpack(ids))
local payloads = redis.call('HMGET', KEYS[2], unpack(ids))
local reply = {}
for i, id in ipairs(ids) do
  reply[#reply + 1] = id
  reply[#reply + 1] = payloads[i]
end
return reply
"""


def make_due(ctx: Context, prefix: str, count: int, label: str) -> None:
    """``count`` notifications due now (delay 0), scheduled in 1,000-recipient calls, none claimed yet."""
    zs = ctx.scheduler(prefix)
    with ctx.bar(f"{label} setup: {count:,} due", count) as bar:
        fill(zs, chunks(recipients(count), 1000), delay_s=0, ops_per_round=20, bar=bar)
    zs.close()


def drain(ctx: Context, prefix: str, count: int, processes: int, label: str) -> tuple[float, int]:
    """Start ``processes`` workers on an already-filled ``prefix``; (notifications/s, duplicates)."""
    r = ctx.redis()
    counters = f"{prefix}:{{p0}}:counters"
    before = int(r.hget(counters, "sent") or 0)  # read before the workers start, or their first sends are lost
    with WorkerPool(ctx.url, prefix, count=processes) as pool:
        started = time.perf_counter()
        with ctx.bar(f"{label} drain, {processes} worker(s)", count) as bar:
            sent = 0
            deadline = started + max(10.0, count / 2000)
            while sent < count and time.perf_counter() < deadline:
                time.sleep(0.02)
                now_sent = int(r.hget(counters, "sent") or 0) - before
                bar.update(now_sent - sent)
                sent = now_sent
        elapsed = time.perf_counter() - started
        records = pool.stop()
    r.close()
    duplicated = sum(1 for v in records.values() if len(v) > 1)
    return sent / elapsed, duplicated


def raw_drain(ctx: Context, count: int, label: str) -> float:
    """The baseline: a bare ZSET + hash, drained 100 at a time by one EVALSHA each, from one process."""
    prefix = ctx.prefix("s4raw")
    r = ctx.redis()
    raw_fill(r, prefix, recipients(count), int(time.time() * 1000) - 1)
    claim = r.register_script(RAW_CLAIM)
    keys = [f"{prefix}:due", f"{prefix}:payloads"]
    got = 0
    with Progress(f"{label} raw EVALSHA claim of 100", count, enabled=ctx.progress) as bar:
        started = time.perf_counter()
        while True:
            reply = claim(keys=keys, args=[int(time.time() * 1000), 100])
            if not reply:
                break
            got += len(reply) // 2
            bar.update(len(reply) // 2)
        elapsed = time.perf_counter() - started
    r.close()
    ctx.drop(prefix)
    return got / elapsed


def measure(ctx: Context, label: str = "S4") -> list[Figure]:
    """Drain rate with 1 and 2 worker processes, and the raw claim baseline."""
    count = ctx.size(200_000, 1_000)
    base = raw_drain(ctx, count, label)
    figures = []
    for processes in (1, 2):
        prefix = ctx.prefix(f"s4-{processes}")
        make_due(ctx, prefix, count, label)
        rate, duplicated = drain(ctx, prefix, count, processes, label)
        ctx.drop(prefix)
        fig = Figure(
            label,
            f"claim + deliver, {processes} worker process{'es' if processes > 1 else ''}",
            rate,
            "notif/s",
            baseline=base,
            note=f"{count:,} due; {duplicated} duplicated",
        )
        if processes == 1:
            fig.target, fig.target_text = 50_000, ">= 50,000/s"
        figures.append(fig)
    return figures
