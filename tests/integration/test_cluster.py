"""zsched on a real Redis Cluster (bundled valkey-server, three masters with replicas): each script runs in one slot."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis
from redis.cluster import RedisCluster

from tests.clusterutil import LocalCluster
from tests.helpers import Recorder
from zsched import AsyncScheduler, Core, IdempotencyConflictError, Keyspace, Scheduler
from zsched.delivery.worker import Worker

pytestmark = pytest.mark.cluster


def test_schedule_deliver_and_inspect_across_four_partitions_on_a_cluster(redis_cluster: LocalCluster) -> None:
    core = Core(Keyspace("zc", partitions=4))
    zs = Scheduler(RedisCluster(host="127.0.0.1", port=redis_cluster.masters[0]), core=core)
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
        scheduler = AsyncScheduler(aioredis.RedisCluster(host="127.0.0.1", port=redis_cluster.masters[0]), core=core)
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
