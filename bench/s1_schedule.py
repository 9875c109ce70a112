"""S1 schedule throughput: single-recipient and 1,000-recipient calls, sync and async, each beside a raw
baseline storing the same due entry and payload per notification in the same round trips (see _raw_commands)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import redis.asyncio as aioredis

from zsched import AsyncScheduler
from zsched.cli.progress import Progress
from zsched.engine import Core
from zsched.engine.keys import Keyspace

from .common import MESSAGE, TITLE, Context, Figure, chunks, raw_payload, recipients

CONCURRENCY = 16  # async callers in flight at once
MANY_TARGET, MANY_STRETCH = 200_000, 1_000_000
"""Recipients scheduled per second in 1,000-recipient calls: the target, and the stretch named in the note."""


def _raw_commands(prefix: str, ids: list[str], due: int, body: bytes) -> list[list[object]]:
    """The fastest plain way to store one call's notifications: ZADD + HSET in one round trip, one pair of
    commands per notification for a single call, one multi-member ZADD and HSET for a many-recipient call."""
    if len(ids) == 1:
        return [["ZADD", f"{prefix}:due", due, ids[0]], ["HSET", f"{prefix}:payloads", ids[0], body]]
    zadd: list[object] = ["ZADD", f"{prefix}:due"]
    hset: list[object] = ["HSET", f"{prefix}:payloads"]
    for nid in ids:
        zadd += [due, nid]
        hset += [nid, body]
    return [zadd, hset]


def _sync_zsched(ctx: Context, people: list[str], per_call: int, bar: Progress) -> float:
    prefix = ctx.prefix("s1")
    zs = ctx.scheduler(prefix)
    started = time.perf_counter()
    for group in chunks(people, per_call):
        zs.schedule(group, TITLE, MESSAGE, delay=3600)
        bar.update(len(group))
    elapsed = time.perf_counter() - started
    zs.close()
    ctx.drop(prefix)
    return len(people) / elapsed


def _sync_raw(ctx: Context, people: list[str], per_call: int, bar: Progress) -> float:
    prefix = ctx.prefix("s1raw")
    r = ctx.redis()
    body, due = raw_payload(), int(time.time() * 1000) + 3_600_000
    started = time.perf_counter()
    nid = 0
    for group in chunks(people, per_call):
        pipe = r.pipeline(transaction=False)
        ids = [str(nid + i + 1) for i in range(len(group))]
        nid += len(group)
        for command in _raw_commands(prefix, ids, due, body):
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        pipe.execute()
        bar.update(len(group))
    elapsed = time.perf_counter() - started
    r.close()
    ctx.drop(prefix)
    return len(people) / elapsed


async def _async_zsched(ctx: Context, people: list[str], per_call: int, bar: Progress) -> float:
    prefix = ctx.prefix("s1a")
    zs = AsyncScheduler(aioredis.Redis.from_url(ctx.url, max_connections=CONCURRENCY), core=Core(Keyspace(prefix)))
    groups = list(chunks(people, per_call))

    async def caller(mine: Sequence[Sequence[str]]) -> None:
        for group in mine:
            await zs.schedule(group, TITLE, MESSAGE, delay=3600)
            bar.update(len(group))

    started = time.perf_counter()
    await asyncio.gather(*(caller(groups[i::CONCURRENCY]) for i in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    await zs.close()
    ctx.drop(prefix)
    return len(people) / elapsed


async def _async_raw(ctx: Context, people: list[str], per_call: int, bar: Progress) -> float:
    prefix = ctx.prefix("s1araw")
    r = aioredis.Redis.from_url(ctx.url, max_connections=CONCURRENCY)
    body, due = raw_payload(), int(time.time() * 1000) + 3_600_000
    groups = list(chunks(people, per_call))

    async def caller(first: int) -> None:
        for g in range(first, len(groups), CONCURRENCY):
            pipe = r.pipeline(transaction=False)
            ids = [str(g * per_call + i + 1) for i in range(len(groups[g]))]
            for command in _raw_commands(prefix, ids, due, body):
                pipe.execute_command(*command)
            await pipe.execute()
            bar.update(len(groups[g]))

    started = time.perf_counter()
    await asyncio.gather(*(caller(i) for i in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    await r.aclose()
    ctx.drop(prefix)
    return len(people) / elapsed


def measure(
    ctx: Context, *, label: str = "S1", singles: int | None = None, many: int | None = None, with_baseline: bool = True
) -> list[Figure]:
    """Notifications scheduled per second in the four modes; baselines measured right after each."""
    n_single = singles if singles is not None else ctx.size(10_000, 50)
    n_many = many if many is not None else ctx.size(100_000, 2_000)
    figures: list[Figure] = []
    for mode in ("sync", "async"):
        for per_call, total in ((1, n_single), (1000, n_many)):
            people = recipients(total)
            what = "single calls" if per_call == 1 else "1,000-recipient calls"
            with ctx.bar(f"{label} {mode} {what}", total) as bar:
                value = (
                    _sync_zsched(ctx, people, per_call, bar)
                    if mode == "sync"
                    else asyncio.run(_async_zsched(ctx, people, per_call, bar))
                )
            base = None
            if with_baseline:
                with ctx.bar(f"{label} {mode} {what} (raw)", total) as bar:
                    base = (
                        _sync_raw(ctx, people, per_call, bar)
                        if mode == "sync"
                        else asyncio.run(_async_raw(ctx, people, per_call, bar))
                    )
            fig = Figure(
                label,
                f"schedule {mode}, {what}",
                value,
                "notif/s",
                baseline=base,
                note=f"{total:,} notifications" + (f", {CONCURRENCY} callers" if mode == "async" else ""),
            )
            if per_call == 1:
                fig.target, fig.target_text, fig.target_on_ratio = 0.8, ">= 0.8 x raw", True
            else:
                fig.target, fig.target_text = MANY_TARGET, f">= {MANY_TARGET:,} recipients/s"
                fig.note += f"; stretch {MANY_STRETCH:,}/s"
            figures.append(fig)
    return figures
