"""A real local Redis Cluster (three masters, each with a replica) and a Sentinel for tests, from the bundled
valkey-server. The cluster itself is ``bench.localcluster`` (the shards benchmark starts one too)."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench.localcluster import SLOT_RANGES, LocalCluster, free_port_pair, until
from zsched.embedded import valkey_binary

__all__ = ["SLOT_RANGES", "LocalCluster", "LocalSentinel", "free_port_pair"]


@dataclass
class LocalSentinel:
    """A valkey-server master watched by one Sentinel (service ``mymaster``), both on loopback ports."""

    root: Path
    master: int = 0
    sentinel: int = 0
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def sentinels(self) -> str:
        return f"127.0.0.1:{self.sentinel}"

    def start(self, timeout_s: float = 20.0) -> LocalSentinel:
        self.master, self.sentinel = free_port_pair(), free_port_pair()
        binary = str(valkey_binary())
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--logfile", "valkey.log"]
        (self.root / "master").mkdir(parents=True)
        argv = [binary, "--port", str(self.master), "--dir", str(self.root / "master"), *common]
        self.processes.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL))
        conf = self.root / "sentinel.conf"  # Sentinel rewrites its config file, so it gets one of its own
        conf.write_text(f"sentinel monitor mymaster 127.0.0.1 {self.master} 1\n")
        argv = [binary, str(conf), "--sentinel", "--port", str(self.sentinel), "--dir", str(self.root)]
        self.processes.append(subprocess.Popen([*argv, "--bind", "127.0.0.1"], stdin=subprocess.DEVNULL))
        deadline = time.monotonic() + timeout_s
        sentinel = redis.Redis(port=self.sentinel, socket_timeout=5)
        try:
            until(deadline, "sentinel did not find its master", lambda: _monitors(sentinel))
        finally:
            sentinel.close()
        return self

    def stop(self) -> None:
        """Stop the master and the Sentinel, by their PIDs."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.processes.clear()


def _monitors(sentinel: redis.Redis) -> bool:
    try:
        found = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
    except redis.ConnectionError:
        return False
    return bool(found)
