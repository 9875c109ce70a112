"""Start worker processes (``bench.worker_proc``), wait until the work is sent, stop them, read their records."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from zsched.keys import Keyspace


@dataclass
class Outcome:
    """What the workers recorded: per notification id, how many times it left and how late each time."""

    lateness_ms: dict[int, list[float]]
    elapsed_s: float
    timed_out: bool


class WorkerPool:
    """``count`` real worker processes on ``prefix``; a context manager that always stops them."""

    def __init__(self, url: str, prefix: str, count: int = 1, batch: int = 100) -> None:
        self.url, self.prefix, self.count, self.batch = url, prefix, count, batch
        self.dir = Path(tempfile.mkdtemp(prefix="zsched-bench-"))
        self.procs: list[subprocess.Popen[str]] = []

    def start(self) -> WorkerPool:
        """Start the processes and wait until each has subscribed to its wakeup channel."""
        for i in range(self.count):
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.worker_proc", "--url", self.url, "--prefix", self.prefix,
                 "--out", str(self.dir / f"w{i}.json"), "--batch", str(self.batch)],
                stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
            self.procs.append(proc)
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if line != "ready":
                self.stop()
                raise RuntimeError(f"benchmark worker did not start: expected 'ready', got {line!r}")
        return self

    def wait_sent(self, expected: int, timeout_s: float, started: float | None = None) -> tuple[float, bool]:
        """Poll the sent counter until ``expected`` were sent or ``timeout_s`` passed; (seconds, timed out)."""
        r = redis.Redis.from_url(self.url)
        counters = Keyspace(self.prefix).partitions[0].counters
        started = time.perf_counter() if started is None else started
        deadline = time.perf_counter() + timeout_s
        timed_out = False
        while int(r.hget(counters, "sent") or 0) < expected:
            if time.perf_counter() > deadline:
                timed_out = True
                break
            time.sleep(0.002)
        elapsed = time.perf_counter() - started
        r.close()
        return elapsed, timed_out

    def stop(self) -> dict[int, list[float]]:
        """SIGTERM every worker (by its own PID), wait, and merge their records."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        merged: dict[int, list[float]] = {}
        for i, proc in enumerate(self.procs):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            path = self.dir / f"w{i}.json"
            if path.exists():
                for nid, late in json.loads(path.read_text()):
                    merged.setdefault(int(nid), []).append(float(late))
                path.unlink()
        self.procs.clear()
        return merged

    def __enter__(self) -> WorkerPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
