"""Start worker processes (``bench.worker_proc``), stop them, and merge what they recorded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path


class WorkerPool:
    """``count`` real worker processes on ``prefix``; a context manager that always stops them."""

    def __init__(
        self,
        url: str,
        prefix: str,
        count: int = 1,
        batch: int = 100,
        purge_every_s: float = 3600.0,
        partitions: int = 1,
        tags: str = "plain",
    ) -> None:
        self.url, self.prefix, self.count, self.batch = url, prefix, count, batch
        self.purge_every_s, self.partitions, self.tags = purge_every_s, partitions, tags
        self.dir = Path(tempfile.mkdtemp(prefix="zsched-bench-"))
        self.procs: list[subprocess.Popen[str]] = []

    def start(self) -> WorkerPool:
        """Start the processes and wait until each has subscribed to its wakeup channel."""
        for i in range(self.count):
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.worker_proc",
                    "--prefix",
                    self.prefix,
                    "--out",
                    str(self.dir / f"w{i}.json"),
                    "--batch",
                    str(self.batch),
                    "--purge-every-s",
                    str(self.purge_every_s),
                    "--partitions",
                    str(self.partitions),
                    "--tags",
                    self.tags,
                ],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "ZSCHED_REDIS_URL": self.url},  # not argv: a password there shows in ps
                cwd=Path(__file__).resolve().parent.parent,
            )
            self.procs.append(proc)
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if line != "ready":
                self.stop()
                raise RuntimeError(f"benchmark worker did not start: expected 'ready', got {line!r}")
        return self

    def cpu_s(self) -> float:
        """CPU time (user + system) the running worker processes have used so far, from /proc/<pid>/stat."""
        return sum(process_cpu_s(proc.pid) for proc in self.procs if proc.poll() is None)

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
            if proc.stdout is not None:
                proc.stdout.close()
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


def process_cpu_s(pid: int) -> float:
    """CPU time (user + system, seconds) process ``pid`` has used, read from /proc (Linux; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14, 15
