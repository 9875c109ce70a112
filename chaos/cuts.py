"""Connection cuts: every zsched connection goes through a proxy that cuts connections mid-command."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec

from .harness import Figures, Pool, run_family, schedule_many, scheduler, settled, tally, until
from .proxy import CuttingProxy


class Plan(msgspec.Struct, kw_only=True, frozen=True):
    """Sizes and rates of one connection-cut run."""

    count: int = 20_000
    workers: int = 2
    cut_every_ms: tuple[int, int] = (50, 300)
    latency_ms: int = 20
    lease_ms: int = 2000
    timeout_s: float = 180.0
    min_cuts: int = 0
    seed: int = 6


def run(plan: Plan | None = None, *, url: str | None = None, prefix: str | None = None) -> Figures:
    """Schedule and deliver ``plan.count`` notifications while the proxy cuts connections."""
    return run_family("cuts", plan or Plan(), url, prefix, _run)


def _run(plan: Plan, url: str, prefix: str, workdir: Path) -> Figures:
    low, high = plan.cut_every_ms
    figures = Figures(family="connection cuts", tried=f"proxy cuts a connection mid-command every {low}-{high} ms")
    started = time.monotonic()
    proxy = CuttingProxy(url, cut_every_ms=plan.cut_every_ms, seed=plan.seed).start()
    proxy.cutting.set()
    zs = scheduler(proxy.url, prefix)
    direct = scheduler(url, prefix)  # the referee reads around the proxy
    pool = Pool(proxy.url, prefix, workdir, lease_ms=plan.lease_ms, latency_ms=plan.latency_ms)
    try:
        pool.start(plan.workers)
        # idempotency keys: redis-py re-sends a command whose reply was cut, and the key makes that a replay
        ids = schedule_many(zs, plan.count, chunk=250, idempotent=True)
        done = settled(direct)  # and, on a short run, enough cuts landed (idle workers still claim and reap)
        figures.check(
            until(lambda: proxy.cuts_mid_command >= plan.min_cuts and done(), plan.timeout_s, every_s=0.25),
            f"not settled after {plan.timeout_s:.0f} s",
        )
        proxy.cutting.clear()
        pool.stop()
        figures.faults = proxy.cuts
        figures.check(proxy.cuts_mid_command > 0, "no connection was cut mid-command: the cuts tested nothing")
        why = pool.explain(figures)
        tally(figures, ids, pool.deliveries(), direct)
        created = direct.stats().totals.get("scheduled", 0)
        figures.check(created == plan.count, f"{created} notifications created for {plan.count} requested")
        figures.notes = {
            "connections through proxy": proxy.connections,
            "cuts mid-command": proxy.cuts_mid_command,
            "batches whose ack was cut (deliveries)": why.cut,
            "created": created,
            "worker reconnect waits": pool.log_count("redis unavailable"),
        }
    finally:
        pool.stop()
        zs.close()
        direct.close()
        proxy.stop()
    return figures.finish(started)
