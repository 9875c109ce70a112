"""Redis crash: the embedded server (AOF, appendfsync everysec) is SIGKILLed and restarted mid-delivery.

The loss bound: valkey appends each write to its AOF before replying and fsyncs once a second, but
it may postpone the append while a slow fsync runs (up to 2 s, replying meanwhile). So a SIGKILL may
lose what was acknowledged in about the last ``WINDOW_S`` before it; everything acknowledged earlier
must be there after the restart (pending or delivered). The run counts every acknowledged id and
reports how many inside the window were lost.
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from pathlib import Path

import msgspec

from zsched import Scheduler, UnavailableError

from .harness import Figures, Pool, own_server, schedule_many, scheduler, settled, statuses, tally, until

WINDOW_S = 2.0
"""Acknowledged writes younger than this at the SIGKILL may be lost (everysec, a postponed append)."""
TERMINAL = ("sent", "failed", "cancelled")


class Plan(msgspec.Struct, kw_only=True, frozen=True):
    """Sizes and times of one Redis-crash run."""

    count: int = 20_000
    workers: int = 2
    due_within_s: tuple[float, float] = (2.0, 10.0)
    crash_after_s: float = 4.0
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


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (our own children are reaped by ``kill``, so no zombie remains)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def backwards(before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]]) -> list[str]:
    """Every id whose status or attempts moved backwards between two snapshots (terminal states are final)."""
    problems = []
    for nid, (status, attempts) in before.items():
        later = after.get(nid)
        if later is None:
            problems.append(f"{nid}: {status} record vanished")
        elif (status in TERMINAL and later[0] != status) or later[1] < attempts:
            problems.append(f"{nid}: {status}/{attempts} became {later[0]}/{later[1]}")
    return problems


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
            acked = [(time.monotonic(), ids)]
            pool.start(plan.workers)
            trickle.start()
            time.sleep(plan.crash_after_s)
            pid = int((server.data_dir / "pid").read_text())
            before = statuses(zs, ids + [i for _, chunk in list(trickle.acked) for i in chunk])
            crashed_at = time.monotonic()  # every status in `before` was read before this
            server.kill()
            figures.faults = 1
            figures.check(not alive(pid), f"valkey-server pid {pid} still runs after SIGKILL")
            pending_at_crash = sum(1 for status, _ in before.values() if status == "pending")
            figures.check(pending_at_crash > 0, "nothing was pending at the kill: the crash tested nothing")
            time.sleep(plan.down_s)
            server.start()
            restarted_at = time.monotonic()
            time.sleep(2.0)
            trickle.stop.set()
            trickle.join(60)
            acked += trickle.acked
            everything = [i for _, chunk in acked for i in chunk]
            window = {i for t, chunk in acked if crashed_at - WINDOW_S <= t <= crashed_at for i in chunk}
            present = statuses(zs, everything)
            missing = [i for i in everything if i not in present]
            old = [i for i in missing if i not in window]
            figures.check(not old, f"{len(old)} schedules acknowledged > {WINDOW_S:.0f} s before the kill lost")
            moved_back = backwards(before, present)
            figures.check(not moved_back, f"status moved backwards: {moved_back[:5]}")
            figures.check(until(settled(zs), plan.timeout_s, every_s=0.25), f"not settled after {plan.timeout_s:.0f} s")
            pool.stop()
            why = pool.explain(figures, acks_lost_within=(crashed_at - WINDOW_S, crashed_at))
            tally(figures, everything, pool.deliveries(), zs, may_lose=frozenset(missing) & window)
            figures.notes = {
                "pending at crash": pending_at_crash,
                "acknowledged before crash": len([i for t, chunk in acked if t <= crashed_at for i in chunk]),
                f"acknowledged in the last {WINDOW_S:.0f} s before the kill": len(window),
                f"acknowledged in the last {WINDOW_S:.0f} s and lost": len(set(missing) & window),
                "duplicates by cause (cut, ack lost)": (why.cut, why.lost_ack),
                "worker reconnect waits": pool.log_count("redis unavailable"),
                "producer retries": trickle.errors,
                "down s": round(restarted_at - crashed_at, 1),
            }
        finally:
            trickle.stop.set()
            pool.stop()
            zs.close()
    return figures.finish(started)
