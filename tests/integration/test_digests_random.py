"""Digests under random histories, on a real server: hypothesis schedules digest members for two recipients and
two keys at random due times and sizes, cancels or reschedules some, runs worker rounds as the pinned clock moves,
takes the channel down and up, and kills "workers" that claimed a member or took a whole digest and never
finished. Every digest delivered must keep the promises: no member before its own due time, no more than its
maximum, one recipient and key, members due within the first one's window, no member after it was cancelled; and
once the clock has run on, every member not cancelled is sent exactly once (no real worker overlaps another
here), its status naming the digest that carried it, and nothing is left pending or in flight.

``ZSCHED_DIGEST_EXAMPLES`` raises the number of histories (default 15 per server)."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ManualClock
from zsched import AsyncScheduler, Core, Keyspace, RetryPolicy, Scheduler
from zsched.delivery.callables import CallableDelivery
from zsched.delivery.router import Router
from zsched.delivery.worker import Worker
from zsched.errors import NotPendingError
from zsched.models import Notification

EXAMPLES = int(os.environ.get("ZSCHED_DIGEST_EXAMPLES", "15"))
S = 1000
WINDOW_MS = 10 * S
LEASE_MS = 2 * S
PEOPLE = ("ann", "bo")
KEYS = ("comments", "likes")


@dataclass
class Member:
    recipient: str
    key: str
    due_ms: int
    most: int
    cancelled_at: int | None = None


class Hook:
    """The one channel: records each digest with the pinned time it went out; refuses while ``down``."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.down = False
        self.got: list[tuple[int, Notification]] = []

    async def __call__(self, n: Notification) -> None:
        if self.down:
            raise ConnectionRefusedError("hook down")
        self.got.append((self.clock.ms, n))


schedules = st.tuples(
    st.just("schedule"), st.sampled_from(PEOPLE), st.sampled_from(KEYS), st.integers(0, 25), st.sampled_from([2, 3, 50])
)
steps = st.lists(
    st.one_of(
        schedules,
        schedules,
        schedules,  # most steps schedule, so digests fill
        st.tuples(st.just("cancel"), st.integers(0, 40)),
        st.tuples(st.just("reschedule"), st.integers(0, 40), st.integers(1, 20)),
        st.tuples(st.just("advance"), st.integers(0, 8_000)),
        st.tuples(st.just("advance"), st.integers(0, 8_000)),
        st.tuples(st.just("crash"), st.booleans()),  # True: it took a whole digest before it died
        st.tuples(st.just("hook"), st.booleans()),  # True: the channel goes down
    ),
    min_size=5,
    max_size=40,
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=steps)
def test_random_histories_keep_the_digest_promises(redis_url: str, history: list[tuple[Any, ...]]) -> None:
    prefix = f"zt-dg-{uuid.uuid4().hex[:10]}"
    clock = ManualClock()
    core = Core(Keyspace(prefix), clock=clock, retry=RetryPolicy(delays_ms=(1000,) * 20))
    zs = Scheduler(redis.Redis.from_url(redis_url), core=core)
    p = core.keys.partitions[0]
    hook = Hook(clock)
    members: dict[int, Member] = {}
    try:
        for step in history:
            kind = step[0]
            if kind == "schedule":
                _, who, key, due_s, most = step
                (nid,) = zs.schedule(
                    [who], f"{key} {len(members)}", "m", delay=1 + due_s, digest_key=key,
                    digest_window=WINDOW_MS / 1000, digest_max=most,
                ).notification_ids  # fmt: skip
                members[nid] = Member(who, key, clock.ms + (1 + due_s) * S, most)
            elif kind == "cancel" and members:
                nid = sorted(members)[step[1] % len(members)]
                try:
                    zs.cancel(nid)
                    members[nid].cancelled_at = clock.ms
                except NotPendingError:
                    pass
            elif kind == "reschedule" and members:
                nid = sorted(members)[step[1] % len(members)]
                try:
                    zs.reschedule(nid, delay=step[2])
                    members[nid].due_ms = clock.ms + step[2] * S
                except NotPendingError:
                    pass
            elif kind == "advance":
                clock.advance(step[1])
                _tick(zs, hook)
            elif kind == "crash":  # a worker claims one due notification and dies, perhaps holding its digest
                for n in zs.run(core.claim(p, 1, LEASE_MS)).notifications:
                    if step[1]:
                        zs.run(core.join_digest(p, n, LEASE_MS))
            elif kind == "hook":
                hook.down = step[1]
        hook.down = False
        for _ in range(60):  # let the clock run on until nothing is left to send
            counts = zs.stats().counts
            if counts["pending"] == counts["processing"] == 0:
                break
            clock.advance(3 * S)
            _tick(zs, hook)
        _check(zs, hook, members)
    finally:
        keys = list(zs.redis.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            zs.redis.unlink(*keys)
        zs.close()


def _check(zs: Scheduler, hook: Hook, members: dict[int, Member]) -> None:
    carried: dict[int, list[int]] = {}  # member id -> the digests that carried it
    for at, digest in hook.got:
        opener = members[digest.id]
        items = [item["id"] for item in digest.data["items"]]
        assert digest.data["count"] == len(items) <= opener.most, f"digest {digest.id} over its maximum: {items}"
        for nid in items:
            m = members[nid]
            assert m.due_ms <= at, f"member {nid} sent at {at}, before its due time {m.due_ms}"
            assert (m.recipient, m.key) == (opener.recipient, opener.key), f"member {nid} in another's digest"
            assert m.due_ms <= opener.due_ms + WINDOW_MS, f"member {nid} due after digest {digest.id} closed"
            assert m.cancelled_at is None or m.cancelled_at > at, f"member {nid} sent after it was cancelled"
            carried.setdefault(nid, []).append(digest.id)
    counts = zs.stats().counts
    assert counts["pending"] == counts["processing"] == 0, counts
    for nid, m in members.items():
        n = zs.status(nid)
        if m.cancelled_at is not None:
            assert n.scheduled_status == "cancelled" and nid not in carried
            continue
        assert n.scheduled_status == "sent", (nid, n.scheduled_status, n.last_error)
        assert carried.get(nid) == [n.digest], f"member {nid} carried by {carried.get(nid)}, its status says {n.digest}"


def _tick(zs: Scheduler, hook: Hook) -> None:
    async def go() -> None:
        kwargs = zs.redis.connection_pool.connection_kwargs
        connection = aioredis.Redis(
            host=kwargs.get("host", "127.0.0.1"),
            port=kwargs.get("port", 6379),
            db=kwargs.get("db", 0),
            password=kwargs.get("password"),
        )
        scheduler = AsyncScheduler(connection, core=zs.core)
        try:
            router = Router({"hook": CallableDelivery(hook)}, default=["hook"])
            await Worker(scheduler, router, lease_ms=LEASE_MS).tick()
        finally:
            await scheduler.close()

    asyncio.run(go())
