"""Purge keeps up: one call removes at most its limit across the terminal sets, and a worker drains a backlog
of expired records call after call, between its claims, instead of one call a minute."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis
import redis.asyncio as aioredis

from bench.common import Context
from bench.s7_purge import fill_expired, terminal_left
from tests.conftest import ManualClock
from tests.helpers import Recorder
from zsched import AsyncScheduler, Scheduler
from zsched.delivery.worker import Worker
from zsched.engine import Core, Op
from zsched.engine.keys import Keyspace
from zsched.engine.steps import Script


def test_one_call_purges_at_most_its_limit_across_the_terminal_sets(pinned: Scheduler, clock: ManualClock) -> None:
    zs, p = pinned, pinned.core.keys.partitions[0]
    sent = zs.schedule(["ann", "bob", "cy"], "Sent", "x", delay=0, created_by="svc").notification_ids
    cancelled = zs.schedule(["dee", "ed", "fay"], "Cancelled", "x", delay=60, created_by="svc").notification_ids
    claimed = zs.run(zs.core.claim(p, 10, 30_000))
    assert sorted(n.id for n in claimed.notifications) == sorted(sent)
    zs.run(zs.core.ack(p, sent))
    for nid in cancelled:
        zs.cancel(nid)
    clock.advance(91 * 86_400_000)
    assert zs.run(zs.core.purge(p, limit=4)) == 4  # sent first, then cancelled
    assert zs.run(zs.core.purge(p, limit=4)) == 2  # fewer than the limit: nothing left
    assert zs.run(zs.core.purge(p, limit=4)) == 0
    for key in (p.sent, p.cancelled, p.by_recipient, p.by_creator):
        assert zs.redis.zcard(key) == 0, key
    assert zs.redis.hlen(p.state) == zs.redis.hlen(p.notifications) == 0
    assert zs.stats().totals["purged"] == 6


class _Spy(AsyncScheduler):
    """Records the script each operation runs, in order."""

    calls: list[str]

    async def run(self, op: Op[Any]) -> Any:
        first = next(op)
        self.calls.append(next((s.name for s in first if isinstance(s, Script)), "?"))

        def replay() -> Op[Any]:
            reply = yield first
            try:
                op.send(reply)
            except StopIteration as done:
                return done.value
            raise AssertionError("purge and claim are one step each")

        return await super().run(replay())


async def test_a_worker_drains_a_purge_backlog_between_claims(redis_url: str, prefix: str) -> None:
    ctx = Context(redis_url, progress=False)
    fill_expired(ctx, prefix, 3000)
    r = redis.Redis.from_url(redis_url)
    p = Keyspace(prefix).partitions[0]
    backlog = terminal_left(r, p)
    assert backlog == 3001  # and the record the filler cloned them from
    producer = Scheduler(r, core=Core(Keyspace(prefix)))
    (due,) = producer.schedule(["zed"], "On time", "despite the purge", delay=0.3).notification_ids
    spy = _Spy(aioredis.Redis.from_url(redis_url), core=Core(Keyspace(prefix)))
    spy.calls = []
    recorder = Recorder()
    worker = Worker(spy, recorder, purge_every_s=60, purge_batch=100, idle_s=0.2)
    running = asyncio.create_task(worker.run())
    deadline = time.monotonic() + 30
    while (terminal_left(r, p) or not recorder.delivered) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    worker.should_exit = True
    await asyncio.wait_for(running, 10)
    await spy.close()
    left = terminal_left(r, p)
    r.close()
    assert left == 0, f"{left} of {backlog} expired records still there after 30 s"
    assert [n.id for n in recorder.delivered] == [due]
    purges = [i for i, name in enumerate(spy.calls) if name == "purge"]
    assert len(purges) >= backlog // 100  # call after call, at most 100 records each
    assert "claim" in spy.calls[purges[0] : purges[-1]], "purge calls go on between claims"
