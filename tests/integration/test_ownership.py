"""Partition ownership on a real server: leases are exclusive, shares balance as workers join and leave, a silent
worker's partitions move once its leases run out, and each script gives the same outcome when run twice."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

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


async def test_running_loops_hand_partitions_over_within_about_a_round(redis_url: str, prefix: str) -> None:
    """With the rounds running on their own: a worker that joins gets its share within about a round of the
    others' (a second at most) and a catch-up round, and one that stops cleanly leaves its share to the other
    as fast; every partition keeps an owner throughout, but for the moments of a handover."""
    core = Core(Keyspace(prefix, partitions=4))
    zs = AsyncScheduler(aioredis.Redis.from_url(redis_url), core=core)
    a, b = Ownership(zs, lease_ms=3000, worker_id="a"), Ownership(zs, lease_ms=3000, worker_id="b")
    try:
        a.start()
        await _until(lambda: len(a.owned()) == 4, 3)
        b.start()
        joined = time.monotonic()
        unowned = 0.0
        while not (len(a.owned()) == 2 and len(b.owned()) == 2):
            assert time.monotonic() - joined < 2.5, "the joining worker did not get its share within about a round"
            await asyncio.sleep(0.01)
            owners_now = {p.index for p in (*a.owned(), *b.owned())}
            unowned += 0.01 * (4 - len(owners_now))
        assert not {p.index for p in a.owned()} & {p.index for p in b.owned()}
        assert unowned < 1.0, f"partitions went unowned for {unowned:.2f} partition-seconds while b joined"
        await a.stop()
        left = time.monotonic()
        await _until(lambda: len(b.owned()) == 4, 2.5)
        assert time.monotonic() - left < 2.5
    finally:
        await a.stop()
        await b.stop()
        await zs.close()


async def _until(done: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"not done within {timeout_s} s"
        await asyncio.sleep(0.01)
