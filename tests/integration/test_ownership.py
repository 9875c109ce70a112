"""Partition ownership on a real server: leases are exclusive, shares balance as workers join and leave, a silent
worker's partitions move once its leases run out, and each script gives the same outcome when run twice."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import redis.asyncio as aioredis

from zsched import AsyncScheduler, Core, Keyspace
from zsched.delivery.ownership import Ownership
from zsched.engine.ownership import owners
from zsched.engine.replies import DisownReply, EnlistReply, OwnReply

LEASE_MS = 600


async def _rounds(*members: Ownership, times: int = 3) -> None:
    for _ in range(times):
        for member in members:
            await member.balance_once()


async def test_shares_are_exclusive_and_balance_as_workers_join_leave_and_die(redis_url: str, prefix: str) -> None:
    core = Core(Keyspace(prefix, partitions=6))
    zs = AsyncScheduler(aioredis.Redis.from_url(redis_url), core=core)
    try:
        a, b, c = (Ownership(zs, lease_ms=LEASE_MS, worker_id=name) for name in ("a", "b", "c"))
        await _rounds(a)
        assert [p.index for p in a.owned()] == list(range(6))  # alone, it owns every partition
        await _rounds(a, b, c)
        held = {m.id: {p.index for p in m.owned()} for m in (a, b, c)}
        assert sorted(len(s) for s in held.values()) == [2, 2, 2]
        assert set().union(*held.values()) == set(range(6))  # each partition owned by exactly one
        recorded = await zs.run(owners(core))
        assert recorded == {i: who for who, s in held.items() for i in s}

        await c.stop()  # a clean stop gives its leases up at once
        await _rounds(a, b, times=2)
        assert sorted(len(m.owned()) for m in (a, b)) == [3, 3]
        assert None not in (await zs.run(owners(core))).values()

        # b falls silent (a stalled or killed process): a takes its partitions once they run out, not before.
        silent_from = time.monotonic()
        await a.balance_once()
        assert len(a.owned()) == 3  # b is still live and holds its share
        while len(a.owned()) < 6:
            await asyncio.sleep(LEASE_MS / 3000)
            await a.balance_once()
            assert time.monotonic() - silent_from < 5 * LEASE_MS / 1000, "a silent worker's partitions did not move"
        assert time.monotonic() - silent_from >= LEASE_MS * 0.9 / 1000  # b's leases held until they ran out
        assert b.owned() == ()  # and b itself stopped counting on them before they did
        assert Counter((await zs.run(owners(core))).values()) == {"a": 6}
    finally:
        await zs.close()


async def test_each_ownership_script_gives_the_same_outcome_twice(redis_url: str, prefix: str) -> None:
    core = Core(Keyspace(prefix, partitions=2))
    zs = AsyncScheduler(aioredis.Redis.from_url(redis_url), core=core)
    try:
        p = core.keys.partitions[0]
        own, disown, enlist = zs.scripts["own"], zs.scripts["disown"], zs.scripts["enlist"]
        first = OwnReply.read(await own(keys=[p.owner], args=["a", 5000]))
        again = OwnReply.read(await own(keys=[p.owner], args=["a", 5000]))
        other = OwnReply.read(await own(keys=[p.owner], args=["b", 5000]))
        assert (first.held, again.held, other.held) == (True, True, False)
        assert 0 < other.ttl_ms <= 5000
        assert DisownReply.read(await disown(keys=[p.owner], args=["b"])).released is False  # not b's to give
        assert DisownReply.read(await disown(keys=[p.owner], args=["a"])).released is True
        assert DisownReply.read(await disown(keys=[p.owner], args=["a"])).released is False  # already free
        assert await zs.redis.get(p.owner) is None
        live = [EnlistReply.read(await enlist(keys=[core.keys.owners], args=["", w, 5000, ""])).live for w in "bab"]
        assert live == [["b"], ["a", "b"], ["a", "b"]]
        gone = EnlistReply.read(await enlist(keys=[core.keys.owners], args=["", "a", 5000, "1"]))
        assert gone.live == ["b"] and gone.now_ms > 0
    finally:
        await zs.close()
