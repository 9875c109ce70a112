"""Worker crash: workers are SIGKILLed at random while they deliver; expired leases bring the work back."""

from __future__ import annotations

import random
import time
from pathlib import Path

import msgspec

from .harness import Figures, Pool, run_family, schedule_many, scheduler, settled, tally


class Plan(msgspec.Struct, kw_only=True, frozen=True):
    """How hard to push: sizes and rates of one worker-crash run."""

    count: int = 50_000
    workers: int = 4
    kill_every_ms: tuple[int, int] = (200, 600)
    lease_ms: int = 2000
    batch: int = 100
    latency_ms: int = 40
    timeout_s: float = 300.0
    min_kills: int = 0
    seed: int = 6


def run(plan: Plan | None = None, *, url: str | None = None, prefix: str | None = None) -> Figures:
    """Deliver ``plan.count`` notifications while a supervisor SIGKILLs a worker mid-batch every few hundred ms."""
    return run_family("worker", plan or Plan(), url, prefix, _run)


def _run(plan: Plan, url: str, prefix: str, workdir: Path) -> Figures:
    rng = random.Random(plan.seed)
    low, high = plan.kill_every_ms
    figures = Figures(
        family="worker crash", tried=f"{plan.workers} workers, SIGKILL one mid-batch every {low}-{high} ms"
    )
    started = time.monotonic()
    zs = scheduler(url, prefix)
    pool = Pool(url, prefix, workdir, lease_ms=plan.lease_ms, batch=plan.batch, latency_ms=plan.latency_ms)
    try:
        ids = schedule_many(zs, plan.count)
        pool.start(plan.workers)
        done = settled(zs)
        deadline = started + plan.timeout_s
        next_check = 0.0
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(low, high) / 1000)
            if len(pool.killed) >= plan.min_kills and time.monotonic() >= next_check:  # not on every kill
                next_check = time.monotonic() + 0.5
                if done():
                    break
            pool.kill_random(rng)
        figures.check(done(), f"not settled after {plan.timeout_s:.0f} s")
        pool.stop()
        figures.faults = len(pool.killed)
        pool.explain(figures)
        tally(figures, ids, pool.deliveries(), zs)
        reaped = zs.stats().totals.get("reaped", 0)
        # the positive control: a kill that never caught a batch in flight proves nothing about leases
        figures.check(reaped > 0, "no lease was reaped: no kill landed while a worker held a batch")
        figures.notes = {
            "workers started": pool.spawned,
            "killed holding a batch": pool.killed_holding,
            "leases reaped": reaped,
            "lease_ms": plan.lease_ms,
            "batch": plan.batch,
            "delivery latency ms": plan.latency_ms,
        }
    finally:
        pool.stop()
        zs.close()
    return figures.finish(started)
