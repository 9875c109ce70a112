"""zsched on a real three-node Redis Cluster (bundled valkey-server): every script runs in one slot."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from redis.cluster import RedisCluster

from tests.helpers import Recorder
from zsched import AsyncScheduler, Core, IdempotencyConflictError, Keyspace, Scheduler
from zsched.delivery.worker import Worker
from zsched.embedded import valkey_binary


def _free_port_pair() -> int:
    """A port whose cluster bus port (+10000) is free too."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 < 65536:
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    root: Path = tmp_path_factory.mktemp("cluster")
    ports = [_free_port_pair() for _ in range(3)]
    processes = []
    for port in ports:
        (root / str(port)).mkdir()
        processes.append(
            subprocess.Popen(
                [
                    str(valkey_binary()),
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--dir",
                    str(root / str(port)),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--logfile",
                    "valkey.log",
                ]
            )
        )
    try:
        clients = [redis.Redis(port=p) for p in ports]
        deadline = time.monotonic() + 10
        while True:
            try:
                if all(c.ping() for c in clients):
                    break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "cluster nodes did not start"
                time.sleep(0.05)
        for client, (first, last) in zip(clients, [(0, 5460), (5461, 10922), (10923, 16383)], strict=True):
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        for port in ports[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        while b"cluster_state:ok" not in clients[0].execute_command("CLUSTER", "INFO") or any(
            len(c.execute_command("CLUSTER", "NODES").splitlines()) < 3 for c in clients
        ):
            assert time.monotonic() < deadline + 20, "cluster did not form"
            time.sleep(0.1)
        for c in clients:
            c.close()
        yield ports[0]
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


def test_schedule_deliver_and_inspect_across_four_partitions_on_a_cluster(cluster: int) -> None:
    core = Core(Keyspace("zc", partitions=4))
    zs = Scheduler(RedisCluster(host="127.0.0.1", port=cluster), core=core)
    people = [f"user{i}" for i in range(40)]
    result = zs.schedule(people, "Cluster", "works", delay=0, idempotency_key="c1")
    assert zs.schedule(people, "Cluster", "works", delay=0, idempotency_key="c1").replayed
    slots = {RedisCluster.keyslot(zs.redis, p.due) for p in core.keys.partitions}
    assert len(slots) == 4
    zs.schedule(["late"], "Holds", "the key", delay=3600, idempotency_key="c2")  # in one partition only
    with pytest.raises(IdempotencyConflictError):  # refused there: the other partitions' staged parts go away
        zs.schedule(people, "Cluster", "works", delay=0, idempotency_key="c2")
    assert zs.stats().counts["pending"] == 41
    assert list(zs.redis.scan_iter(match="zc:*:staged:*")) == []
    recorder = Recorder()

    async def deliver() -> None:
        scheduler = AsyncScheduler(aioredis.RedisCluster(host="127.0.0.1", port=cluster), core=core)
        worker = Worker(scheduler, recorder)
        task = asyncio.create_task(worker.run())
        deadline = time.monotonic() + 20
        while len(recorder.delivered) < 40 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        worker.should_exit = True
        await task
        await scheduler.close()

    asyncio.run(deliver())
    assert sorted(n.id for n in recorder.delivered) == sorted(result.notification_ids)
    assert zs.stats().counts["sent"] == 40 and zs.stats().counts["pending"] == 1
    assert zs.list_for("user7").items[0].scheduled_status == "sent"
    zs.close()
