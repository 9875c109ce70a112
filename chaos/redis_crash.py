"""Redis crash: the embedded server (AOF, appendfsync everysec) is SIGKILLed and restarted mid-delivery."""

from __future__ import annotations

import random
import tempfile
import threading
import time
from pathlib import Path

import msgspec

from zsched import Scheduler, UnavailableError

from .harness import Figures, Pool, backwards, own_server, schedule_many, scheduler, settled, statuses, tally, until


class Plan(msgspec.Struct, kw_only=True, frozen=True):
    """Sizes and times of one Redis-crash run."""

    count: int = 20_000
    workers: int = 2
    due_within_s: tuple[float, float] = (2.0, 10.0)
    crash_after_s: float = 3.0
    down_s: float = 1.0
    lease_ms: int = 2000
    latency_ms: int = 20
    timeout_s: float = 180.0
    seed: int = 6


class Trickle(threading.Thread):
    """A producer that keeps scheduling small batches through the crash, noting when each was acknowledged."""

    def __init__(self, zs: Scheduler, rng: random.Random, limit: int = 400) -> None:
        super().__init__(daemon=True)
        self.zs, self.rng, self.limit = zs, rng, limit
        self.acked: list[tuple[float, list[int]]] = []
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        for chunk in range(self.limit):
            if self.stop.is_set():
                return
            people = [f"t{chunk}-{i}" for i in range(25)]
            for _ in range(30):  # the same idempotency key on every try: a lost reply is replayed, not doubled
                try:
                    result = self.zs.schedule(
                        people,
                        "Trickle",
                        "during the crash",
                        delay=self.rng.uniform(0.5, 2),
                        idempotency_key=f"trickle-{chunk}",
                    )
                except UnavailableError:
                    self.errors += 1
                    time.sleep(0.2)
                    continue
                self.acked.append((time.monotonic(), result.notification_ids))
                break
            time.sleep(0.05)


def run(plan: Plan | None = None) -> Figures:
    """SIGKILL the server while ``plan.count`` notifications are pending and workers deliver; restart it."""
    plan = plan or Plan()
    rng = random.Random(plan.seed)
    figures = Figures(family="redis crash", tried=f"SIGKILL valkey (AOF everysec), {plan.down_s:.0f} s down, restart")
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="chaos-redis-") as tmp,
        own_server(Path(tmp) / "data", persistent=True) as server,
    ):
        zs = scheduler(server.url, "chaos")
        pool = Pool(server.url, "chaos", Path(tmp) / "work", lease_ms=plan.lease_ms, latency_ms=plan.latency_ms)
        trickle = Trickle(scheduler(server.url, "chaos"), rng)
        try:
            low, high = plan.due_within_s
            ids: list[int] = []
            for _ in range(plan.count // 500):
                ids += schedule_many(zs, 500, delay_s=rng.uniform(low, high), tag=f"b{len(ids)}-")
            pool.start(plan.workers)
            trickle.start()
            time.sleep(plan.crash_after_s)
            known = ids + [i for _, chunk in trickle.acked for i in chunk]
            before = statuses(zs, known)
            pending_at_crash = sum(1 for status, _ in before.values() if status == "pending")
            time.sleep(1.2)  # everything in `before` is now older than the one-second durability window
            crashed_at = time.monotonic()
            server.kill()
            figures.faults = 1
            time.sleep(plan.down_s)
            server.start()
            restarted_at = time.monotonic()
            time.sleep(2.0)
            trickle.stop.set()
            trickle.join(60)
            after = statuses(zs, known)
            moved_back = backwards(before, after)
            figures.check(not moved_back, f"status moved backwards: {moved_back[:5]}")
            old = [i for t, chunk in trickle.acked if t < crashed_at - 1.0 for i in chunk] + ids
            everything = ids + [i for _, chunk in trickle.acked for i in chunk]
            present = statuses(zs, everything)
            vanished_old = [i for i in old if i not in present]
            figures.check(not vanished_old, f"{len(vanished_old)} schedules acknowledged > 1 s before the crash lost")
            survivors = [i for i in everything if i in present]
            figures.check(until(settled(zs), plan.timeout_s, every_s=0.25), f"not settled after {plan.timeout_s:.0f} s")
            pool.stop()
            # each reconnect wait can orphan the one batch its worker had in flight; reap redelivers it
            figures.duplicate_bound = max(1, pool.log_count("redis unavailable")) * pool.batch
            tally(figures, survivors, pool.deliveries(), zs, known=set(everything))
            figures.notes = {
                "pending at crash": pending_at_crash,
                "acknowledged before crash": len(before),
                "acknowledged in the last second and lost": len(everything) - len(survivors),
                "worker reconnect waits": pool.log_count("redis unavailable"),
                "producer retries": trickle.errors,
                "down s": round(restarted_at - crashed_at, 1),
            }
        finally:
            trickle.stop.set()
            pool.stop()
            zs.close()
    return figures.finish(started)
