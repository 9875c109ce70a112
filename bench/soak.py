"""Soak: steady schedule and delivery for minutes with retention shortened, and Redis memory must stay flat.

A real ``zsched worker`` process (the default websocket channel: InboxDelivery's inbox streams and PUBLISH,
configured from ``ZSCHED_*`` variables as in production) delivers what this process schedules at a fixed rate,
each notification due a second after it is scheduled, to recipients drawn from a pool of users. Sent records,
inbox entries and idle inboxes should all go after the retention, so after a warm-up INFO used_memory should
stay where it is. Prints one row a minute and PASS or FAIL; exits 1 on FAIL.

    python -m bench.soak                       # 10 minutes at 1,000/s, retention 30 s (make soak)
    python -m bench.soak --seconds 40 --rate 200 --keep-s 5 --check-after-s 15 --tolerance 0.25
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from zsched import Scheduler
from zsched.embedded import EmbeddedServer
from zsched.engine import Core, Retention
from zsched.engine.keys import Keyspace

from .common import fill

SAMPLES_PER_READING = 10
"""Each memory reading is the mean of this many one-second INFO samples, so one purge call's sawtooth (a
second's records) does not decide PASS or FAIL."""


@dataclass
class Row:
    """One reporting period: what was scheduled, delivered and purged in it, and memory at its end."""

    at_s: float
    scheduled: int
    delivered: int
    purged: int
    used_memory: int
    pending: int
    records: int


@dataclass
class Soak:
    """One soak run's settings and what it measured."""

    url: str
    seconds: float = 600.0
    rate: int = 1000
    keep_s: float = 30.0
    users: int = 100_000
    check_after_s: float = 120.0
    tolerance: float = 0.05
    period_s: float = 60.0
    prefix: str = field(default_factory=lambda: f"zb-soak-{os.getpid()}")
    rows: list[Row] = field(default_factory=list)
    reference: int = 0
    final: int = 0
    delivered: int = 0
    scheduled: int = 0

    def run(self) -> bool:
        """Schedule and deliver for ``seconds``; True when memory at the end is within ``tolerance`` of the
        reading after ``check_after_s`` and everything due was delivered."""
        keep_ms = round(self.keep_s * 1000)
        r = redis.Redis.from_url(self.url)
        core = Core(Keyspace(self.prefix), retention=Retention(keep_ms, keep_ms, keep_ms))
        zs = Scheduler(redis.Redis.from_url(self.url), core=core)
        p = core.keys.partitions[0]
        worker = self._start_worker(keep_ms)
        rng = random.Random(7)
        samples: list[int] = []
        scheduled = scheduled_before = delivered_before = purged_before = 0
        started = time.monotonic()
        next_row = self.period_s
        try:
            step_s = 0.1
            tick = 0
            while (elapsed := time.monotonic() - started) < self.seconds:
                due = round(self.rate * step_s * (tick + 1)) - round(self.rate * step_s * tick)
                people = [[str(1_000_000 + rng.randrange(self.users))] for _ in range(due)]
                scheduled += fill(zs, people, delay_s=1.0, ops_per_round=max(1, due))
                tick += 1
                if tick % round(1 / step_s) == 0:
                    samples.append(int(r.info("memory")["used_memory"]))
                if worker.poll() is not None:
                    raise RuntimeError(f"the worker exited with {worker.returncode}")
                if elapsed >= next_row or elapsed + step_s >= self.seconds:
                    sent_now, purged_now = (int(v or 0) for v in r.hmget(p.counters, ["sent", "purged"]))
                    mem = sum(samples[-SAMPLES_PER_READING:]) // max(1, len(samples[-SAMPLES_PER_READING:]))
                    self.rows.append(
                        Row(
                            elapsed,
                            scheduled - scheduled_before,
                            sent_now - delivered_before,
                            purged_now - purged_before,
                            mem,
                            int(r.zcard(p.due)) + int(r.zcard(p.processing)),
                            int(r.hlen(p.state)),
                        )
                    )
                    self._print_row(self.rows[-1])
                    if not self.reference and elapsed >= self.check_after_s - step_s:
                        self.reference = mem
                    scheduled_before = scheduled
                    delivered_before = sent_now
                    purged_before = purged_now
                    next_row += self.period_s
                time.sleep(max(0.0, started + step_s * tick - time.monotonic()))
            deadline = time.monotonic() + 10  # the last second's notifications fall due and go out
            while (sent := int(r.hget(p.counters, "sent") or 0)) < scheduled and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            worker.terminate()
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            zs.close()
            self._drop(r)
            r.close()
        self.final = self.rows[-1].used_memory if self.rows else 0
        self.delivered, self.scheduled = sent, scheduled
        drift = (self.final - self.reference) / self.reference if self.reference else float("inf")
        ok = abs(drift) <= self.tolerance and sent == scheduled
        print(
            f"\nused_memory {self.final:,} B at the end vs {self.reference:,} B after {self.check_after_s:g} s: "
            f"{drift * 100:+.1f} % (allowed {self.tolerance * 100:g} %); "
            f"{sent:,} of {scheduled:,} scheduled delivered\n{'PASS' if ok else 'FAIL'}",
            flush=True,
        )
        return ok

    def _start_worker(self, keep_ms: int) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "ZSCHED_REDIS_URL": self.url,  # not argv: a password there shows in ps
            "ZSCHED_PREFIX": self.prefix,
            "ZSCHED_KEEP_SENT_MS": str(keep_ms),
            "ZSCHED_KEEP_CANCELLED_MS": str(keep_ms),
            "ZSCHED_KEEP_FAILED_MS": str(keep_ms),
            "ZSCHED_PURGE_EVERY_S": "1",  # a round a second: a retention of seconds, not 90 days
        }
        return subprocess.Popen(
            [sys.executable, "-m", "zsched", "worker", "--log-level", "warning"],
            env=env,
            stdout=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parent.parent,
        )

    def _print_row(self, row: Row) -> None:
        if len(self.rows) == 1:
            print("| minute | scheduled | delivered | used_memory | purged | pending | records |", flush=True)
            print("|---|---|---|---|---|---|---|", flush=True)
        print(
            f"| {row.at_s / 60:.1f} | {row.scheduled:,} | {row.delivered:,} | {row.used_memory:,} | "
            f"{row.purged:,} | {row.pending:,} | {row.records:,} |",
            flush=True,
        )

    def _drop(self, r: redis.Redis) -> None:
        batch: list[bytes] = []
        for key in r.scan_iter(match=f"{self.prefix}:*", count=5000):
            batch.append(key)
            if len(batch) >= 1000:
                r.unlink(*batch)
                batch.clear()
        if batch:
            r.unlink(*batch)


def main(argv: list[str] | None = None) -> int:
    """Run one soak on a private valkey-server (or ``--redis-url``); 0 on PASS, 1 on FAIL."""
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=600.0, help="how long to schedule (default 600)")
    p.add_argument("--rate", type=int, default=1000, help="notifications scheduled per second (default 1000)")
    p.add_argument("--keep-s", type=float, default=30.0, help="retention of sent/cancelled/failed (default 30)")
    p.add_argument("--users", type=int, default=100_000, help="recipients drawn from this many (default 100000)")
    p.add_argument("--check-after-s", type=float, default=120.0, help="when the reference memory is read")
    p.add_argument("--tolerance", type=float, default=0.05, help="allowed memory drift after it (default 0.05)")
    p.add_argument("--period-s", type=float, default=60.0, help="seconds per table row (default 60)")
    p.add_argument("--redis-url", help="default: a private valkey-server (memory is server-wide: keep it private)")
    args = p.parse_args(argv)
    server = None
    if args.redis_url is None:
        server = EmbeddedServer(tempfile.mkdtemp(prefix="zsched-soak-"), persistent=False).start()
    url = args.redis_url if server is None else server.url
    print(
        f"soak: {args.seconds:g} s at {args.rate:,}/s to {args.users:,} users, retention {args.keep_s:g} s; "
        f"memory checked against the reading after {args.check_after_s:g} s "
        f"(each reading the mean of {SAMPLES_PER_READING} one-second samples)",
        flush=True,
    )
    try:
        soak = Soak(
            url,
            seconds=args.seconds,
            rate=args.rate,
            keep_s=args.keep_s,
            users=args.users,
            check_after_s=args.check_after_s,
            tolerance=args.tolerance,
            period_s=args.period_s,
        )
        return 0 if soak.run() else 1
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
