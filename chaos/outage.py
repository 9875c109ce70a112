"""Redis outage: the server stops for a while and starts again on the same port and data."""

from __future__ import annotations

import itertools
import re
import tempfile
import time
from datetime import datetime
from pathlib import Path

import msgspec

from .harness import Figures, Pool, own_server, schedule_many, scheduler, settled, tally, until

BACKOFF_S = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0)
"""The worker's waits while Redis is unreachable, as it logs them (%.1f): doubling from 0.1 s to the cap, 5 s."""
NOTICE_S = 1.5
"""How late a worker may notice the outage (its idle wait is 1 s) and still be held to the full schedule."""
_WAIT = re.compile(r"^(\S+ \S+) WARNING zsched\.worker: redis unavailable .*; retrying in ([0-9.]+) s$", re.MULTILINE)


def logged_waits(log: str) -> list[tuple[float, float]]:
    """(when, how long) of each "redis unavailable; retrying in X s" line of one worker's log."""
    return [
        (datetime.strptime(at, "%Y-%m-%d %H:%M:%S,%f").timestamp(), float(wait_s)) for at, wait_s in _WAIT.findall(log)
    ]


def backoff_problems(seen: list[tuple[float, float]], outage_s: float) -> list[str]:
    """What is wrong with one worker's waits through one outage: not doubling to the cap, too few, too short."""
    logged = [wait_s for _, wait_s in seen]
    expected = [*BACKOFF_S, *[BACKOFF_S[-1]] * len(logged)][: len(logged)]
    starts = [sum(BACKOFF_S[:i]) + BACKOFF_S[-1] * max(0, i - len(BACKOFF_S)) for i in range(64)]
    due = sum(1 for start in starts if start <= outage_s - NOTICE_S)
    problems = []
    if logged != expected:
        problems.append(f"waits {logged} are not {expected} (0.1 s doubling to 5 s)")
    if len(logged) < due:
        problems.append(f"{len(logged)} waits in a {outage_s:.0f} s outage; the backoff schedule has {due}")
    short = [f"{b - a:.2f} s for {w} s" for (a, w), (b, _) in itertools.pairwise(seen) if b - a < 0.9 * w - 0.02]
    if short:
        problems.append(f"waited less than logged: {short[:3]}")
    return problems


class Plan(msgspec.Struct, kw_only=True, frozen=True):
    """Sizes and times of one outage run."""

    before: int = 1000
    during: int = 4000
    workers: int = 2
    outage_s: float = 10.0
    timeout_s: float = 120.0


def run(plan: Plan | None = None) -> Figures:
    """Stop the server for ``plan.outage_s``; what fell due meanwhile is delivered after, late but once."""
    plan = plan or Plan()
    figures = Figures(family="redis outage", tried=f"stop valkey for {plan.outage_s:.0f} s, start on the same port")
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="chaos-outage-") as tmp,
        own_server(Path(tmp) / "data", persistent=True) as server,
    ):
        zs = scheduler(server.url, "chaos")
        pool = Pool(server.url, "chaos", Path(tmp) / "work", lease_ms=5000)
        try:
            ids = schedule_many(zs, plan.before, tag="before")
            pool.start(plan.workers)
            figures.check(until(settled(zs), 60), "the notifications due before the outage were not delivered")
            # due from 1 s into the outage until 2 s before its end, so no batch is in flight when it starts
            step_s = max(0.0, plan.outage_s - 3) / max(1, plan.during // 500)
            during: list[int] = []
            for k in range(max(1, plan.during // 500)):
                during += schedule_many(
                    zs, min(500, plan.during - len(during)), delay_s=2.0 + k * step_s, tag=f"during{k}-"
                )
            time.sleep(1.0)
            cpu_before, waits_before = pool.cpu_s(), pool.log_count("redis unavailable")
            server.stop()
            figures.faults = 1
            time.sleep(plan.outage_s)
            cpu_s = pool.cpu_s() - cpu_before
            waits = pool.log_count("redis unavailable") - waits_before
            delivered_in_outage = sum(1 for nid, _ in pool.deliveries() if nid in set(during))
            server.start()
            figures.check(until(settled(zs), plan.timeout_s, every_s=0.25), f"not settled after {plan.timeout_s:.0f} s")
            pool.stop()
            figures.duplicate_bound = 0
            tally(figures, ids + during, pool.deliveries(), zs)
            figures.check(delivered_in_outage == 0, f"{delivered_in_outage} delivered while Redis was down?")
            figures.check(
                cpu_s < 0.25 * plan.outage_s * plan.workers,
                f"workers used {cpu_s:.1f} CPU s in a {plan.outage_s:.0f} s outage: spinning",
            )
            figures.check(
                waits <= 10 * plan.outage_s * plan.workers,
                f"{waits} connection retries in {plan.outage_s:.0f} s: spinning",
            )
            schedules = [
                logged_waits(path.read_text(errors="replace")) for path in sorted(pool.workdir.glob("worker-*.err"))
            ]
            for n, seen in enumerate(schedules):
                for problem in backoff_problems(seen, plan.outage_s):
                    figures.check(False, f"worker {n} backoff: {problem}")
            figures.notes = {
                "due during outage": len(during),
                "worker CPU s during outage": round(cpu_s, 2),
                "worker reconnect waits during outage": waits,
                "backoff waits logged (s)": [w for _, w in max(schedules, key=len, default=[])],
            }
        finally:
            pool.stop()
            zs.close()
    return figures.finish(started)
