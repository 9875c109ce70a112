"""A lost reply does not run a state-changing script twice.

redis-py sends a command again after a connection error or a socket timeout, EVALSHA included. Through a
proxy that lets one chosen script call reach the server and then drops its reply (cuts the connection) or
delays it past the socket timeout, every such call must have exactly one effect, and its caller must get
the outcome of that one run: the ids that exist, the batch it claimed, the verdict it was charged for.
Over the sync and async library, the HTTP API and the worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import pytest
import redis

from tests.integration.faultproxy import FaultProxy, command_on, evalsha_of
from tests.integration.http_support import TestClient, Tokens
from zsched import AsyncScheduler, Core, Keyspace, RetryPolicy, Scheduler
from zsched.delivery.inbox import InboxDelivery
from zsched.delivery.worker import Worker
from zsched.engine import Op, requeue_dead
from zsched.settings import Settings
from zsched.web.app import create_app
from zsched.web.auth import TokenStore, tokens_key
from zsched.web.ratelimit import RateLimiter

T = TypeVar("T")
SOCKET_TIMEOUT_S = 0.5
HOLD_S = {"drop": 0.25, "delay": 1.0}  # a dropped reply cuts the connection after 0.25 s; a delayed one is late


@pytest.fixture(params=["drop", "delay"])
def proxy(request: pytest.FixtureRequest, redis_url: str) -> Iterator[FaultProxy]:
    p = FaultProxy(redis_url, request.param, hold_s=HOLD_S[request.param]).start()
    yield p
    p.stop()


@pytest.fixture
def core(keyspace: Keyspace) -> Core:
    return Core(keyspace, retry=RetryPolicy(delays_ms=(60_000,)))


@pytest.fixture
def direct(redis_url: str, core: Core) -> Iterator[Scheduler]:
    """The same keyspace without the proxy: to set the scene and to look at the result."""
    zs = Scheduler(redis.Redis.from_url(redis_url), core=core)
    yield zs
    zs.close()


class Face:
    """The sync or the async library through the proxy, driven from one async test."""

    def __init__(self, kind: str, url: str, core: Core) -> None:
        self.kind = kind
        self.sync = Scheduler.from_url(url, socket_timeout_s=SOCKET_TIMEOUT_S, core=core)
        self.aio = AsyncScheduler.from_url(url, socket_timeout_s=SOCKET_TIMEOUT_S, core=core)

    async def run(self, op: Op[T]) -> T:
        if self.kind == "sync":
            return await asyncio.to_thread(self.sync.run, op)
        return await self.aio.run(op)

    async def close(self) -> None:
        self.sync.close()
        await self.aio.close()


@pytest.fixture(params=["sync", "async"])
async def face(request: pytest.FixtureRequest, proxy: FaultProxy, core: Core) -> AsyncIterator[Face]:
    f = Face(request.param, proxy.url, core)
    await f.run(core.stats())  # the layout check goes through before any fault is armed
    yield f
    await f.close()


def _count(direct: Scheduler, key: Callable[[Any], str]) -> int:
    return sum(int(direct.redis.hlen(key(p))) for p in direct.core.keys.partitions)


def _due_now(direct: Scheduler, recipients: list[str]) -> list[int]:
    return direct.schedule(recipients, "t", "m", delay=0).notification_ids


def _server_ms(direct: Scheduler) -> int:
    seconds, micros = direct.redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


# -- the library, sync and async --------------------------------------------------------------------


async def test_schedule_creates_one_notification_and_returns_its_id(
    face: Face, proxy: FaultProxy, direct: Scheduler, core: Core
) -> None:
    proxy.arm(evalsha_of("schedule"))
    result = await face.run(core.schedule(["alice"], "t", "m", delay=60))
    assert proxy.faults == 1
    assert _count(direct, lambda p: p.notifications) == 1, "one call, one notification"
    assert direct.status(result.notification_ids[0]).scheduled_status == "pending" and not result.replayed


@pytest.mark.parametrize("script", ["stage_schedule", "commit_schedule"])
@pytest.mark.parametrize("key", [None, "call-1"])
async def test_a_call_across_partitions_creates_each_once(
    redis_url: str, prefix: str, proxy: FaultProxy, script: str, key: str | None
) -> None:
    core = Core(Keyspace(prefix, partitions=4))
    face = Face("async", proxy.url, core)
    direct = Scheduler(redis.Redis.from_url(redis_url), core=core)
    try:
        await face.run(core.stats())
        people = [f"r{i}" for i in range(8)]
        proxy.arm(evalsha_of(script))
        result = await face.run(core.schedule(people, "t", "m", delay=60, idempotency_key=key))
        assert proxy.faults == 1
        stats = direct.stats()  # a part committed twice would count its recipients twice in both
        assert stats.counts["pending"] == stats.totals["scheduled"] == 8
        assert [direct.status(i).recipient for i in result.notification_ids] == people
        assert not result.replayed, "the first call of a key is not a replay, however often it reached Redis"
    finally:
        direct.close()
        await face.close()


async def test_cancel_that_worked_says_so(face: Face, proxy: FaultProxy, direct: Scheduler, core: Core) -> None:
    (nid,) = direct.schedule(["alice"], "t", "m", delay=60).notification_ids
    proxy.arm(evalsha_of("cancel"))
    assert (await face.run(core.cancel(nid))).scheduled_status == "cancelled"
    assert proxy.faults == 1 and direct.stats().totals.get("cancelled") == 1


async def test_reschedule_with_a_delay_counts_from_the_first_run(
    face: Face, proxy: FaultProxy, direct: Scheduler, core: Core
) -> None:
    (nid,) = direct.schedule(["alice"], "t", "m", delay=60).notification_ids
    before_ms = _server_ms(direct)
    proxy.arm(evalsha_of("reschedule"))
    moved = await face.run(core.reschedule(nid, delay=10))
    assert proxy.faults == 1
    # A second run would take "now" again, a whole hold (0.25 s or 1 s) later.
    due_ms = int(moved.scheduled_at.timestamp() * 1000)
    assert 10_000 <= due_ms - before_ms < 10_000 + 200
    assert direct.status(nid).scheduled_at == moved.scheduled_at


async def test_a_whole_call_cancelled_says_how_many_once(
    face: Face, proxy: FaultProxy, direct: Scheduler, core: Core
) -> None:
    batch = direct.schedule(["a", "b", "c"], "t", "m", delay=60).batch_id
    proxy.arm(evalsha_of("cancel_batch"))
    change = await face.run(core.cancel_batch(batch))
    assert proxy.faults == 1 and (change.changed, change.not_pending) == (3, 0), "the first run's answer"
    assert direct.stats().totals.get("cancelled") == 3


async def test_a_whole_call_rescheduled_with_a_delay_counts_from_the_first_run(
    face: Face, proxy: FaultProxy, direct: Scheduler, core: Core
) -> None:
    result = direct.schedule(["a", "b", "c"], "t", "m", delay=60)
    before_ms = _server_ms(direct)
    proxy.arm(evalsha_of("reschedule_batch"))
    change = await face.run(core.reschedule_batch(result.batch_id, delay=10))
    assert proxy.faults == 1 and change.changed == 3
    due_ms = int(direct.status(result.notification_ids[1]).scheduled_at.timestamp() * 1000)
    assert 10_000 <= due_ms - before_ms < 10_000 + 200


@pytest.mark.parametrize("script", ["edit", "edit_batch"])
async def test_an_edit_applies_once_and_answers_as_it_did(
    face: Face, proxy: FaultProxy, direct: Scheduler, core: Core, script: str
) -> None:
    result = direct.schedule(["a", "b", "c"], "t", "m", delay=60)
    proxy.arm(evalsha_of(script))
    if script == "edit":  # a second run would find the payload changed and answer 'stale', or fork it again
        assert (await face.run(core.edit(result.notification_ids[1], title="new"))).title == "new"
    else:
        assert (await face.run(core.edit_batch(result.batch_id, title="new"))).changed == 3
    assert proxy.faults == 1
    expected = ["t", "new", "t"] if script == "edit" else ["new"] * 3
    assert [direct.status(i).title for i in result.notification_ids] == expected
    p = core.keys.partitions[0]
    holders = int(direct.redis.hlen(p.payload_refs))
    assert holders == (2 if script == "edit" else 1), "one fresh holder at most: the edit ran once"


async def test_requeue_dead_returns_every_id_it_requeued(
    face: Face, proxy: FaultProxy, direct: Scheduler, core: Core
) -> None:
    p = core.keys.partitions[0]
    ids = _due_now(direct, ["a", "b"])
    claimed = direct.run(core.claim(p, 10, 60_000)).notifications
    direct.run(core.fail(p, [(n, "boom") for n in claimed], dict.fromkeys(ids)))
    proxy.arm(evalsha_of("requeue_dead"))
    assert sorted(await face.run(requeue_dead(core, ids))) == ids
    assert proxy.faults == 1 and direct.stats().totals.get("requeued") == 2


async def test_claim_returns_the_batch_it_claimed(face: Face, proxy: FaultProxy, direct: Scheduler, core: Core) -> None:
    p = core.keys.partitions[0]
    ids = _due_now(direct, ["a", "b", "c"])
    proxy.arm(evalsha_of("claim"))
    claimed = await face.run(core.claim(p, 10, 60_000))
    assert proxy.faults == 1
    assert sorted(n.id for n in claimed.notifications) == ids, "nothing is stranded in processing"
    assert all(n.attempts == 1 and n.scheduled_status == "processing" for n in claimed.notifications)
    assert sorted(int(i) for i in direct.redis.zrange(p.processing, 0, -1)) == ids
    assert direct.stats().totals.get("claimed") == 3


async def test_ack_reports_what_it_acked(face: Face, proxy: FaultProxy, direct: Scheduler, core: Core) -> None:
    p = core.keys.partitions[0]
    ids = _due_now(direct, ["a", "b"])
    direct.run(core.claim(p, 10, 60_000))
    proxy.arm(evalsha_of("ack"))
    assert (await face.run(core.ack(p, ids)))[1] == 2
    assert proxy.faults == 1 and direct.stats().totals.get("sent") == 2


async def test_a_failure_report_is_applied_once_and_reported(
    face: Face, proxy: FaultProxy, direct: Scheduler, core: Core
) -> None:
    p = core.keys.partitions[0]
    _due_now(direct, ["a", "b"])
    a, b = direct.run(core.claim(p, 10, 60_000)).notifications
    proxy.arm(evalsha_of("retry"))
    assert await face.run(core.fail(p, [(a, "boom"), (b, "gone")], {a.id: 60_000, b.id: None})) == (1, 1)
    assert proxy.faults == 1
    assert direct.stats().totals.get("retried") == 1 and direct.stats().totals.get("failed") == 1


@pytest.mark.parametrize("script", ["renew", "reap"])
async def test_renew_and_reap_are_idempotent_by_themselves(
    face: Face, proxy: FaultProxy, direct: Scheduler, core: Core, script: str
) -> None:
    """These two carry no operation key: running one again finds nothing more to do (renew moves deadlines a
    lease past now again; reap finds the expired leases gone), so one call still has one effect."""
    p = core.keys.partitions[0]
    ids = _due_now(direct, ["a", "b"])
    claimed = direct.run(core.claim(p, 10, 200 if script == "reap" else 60_000)).notifications
    proxy.arm(evalsha_of(script))
    if script == "renew":
        assert await face.run(core.renew(p, claimed, 60_000)) == []
        assert [direct.status(i).attempts for i in ids] == [1, 1]
    else:
        await asyncio.sleep(0.3)
        await face.run(core.reap(p, lease_ms=200))
        assert direct.stats().totals.get("reaped") == 2 and direct.stats().counts["pending"] == 2
    assert proxy.faults == 1


# -- what the worker's delivery and the HTTP API call directly --------------------------------------


async def test_publish_inbox_appends_and_publishes_once(proxy: FaultProxy, direct: Scheduler, core: Core) -> None:
    p = core.keys.partitions[0]
    _due_now(direct, ["alice", "bob"])
    batch = direct.run(core.claim(p, 10, 60_000)).notifications
    connection = AsyncScheduler.from_url(proxy.url, socket_timeout_s=SOCKET_TIMEOUT_S, core=core)
    try:
        proxy.arm(evalsha_of("publish_inbox"))
        assert await InboxDelivery(connection.redis, core.keys).deliver(batch) == [None, None]
    finally:
        await connection.close()
    assert proxy.faults == 1
    assert [direct.redis.xlen(p.inbox(r)) for r in ("alice", "bob")] == [1, 1]


async def test_a_rate_limited_call_is_charged_once(proxy: FaultProxy, prefix: str) -> None:
    connection = AsyncScheduler.from_url(proxy.url, socket_timeout_s=SOCKET_TIMEOUT_S).redis
    try:
        limiter = RateLimiter(connection, prefix, rate_per_s=0.001, burst=3)
        proxy.arm(evalsha_of("rate_limit"))
        assert (await limiter.take("t")).remaining == 2
        assert proxy.faults == 1
        assert (await limiter.take("t")).remaining == 1
    finally:
        await connection.aclose()


def test_a_revoke_that_worked_says_so(proxy: FaultProxy, redis_url: str, prefix: str) -> None:
    store = TokenStore(prefix)
    direct = redis.Redis.from_url(redis_url)
    through = Scheduler.from_url(proxy.url, socket_timeout_s=SOCKET_TIMEOUT_S).redis
    try:
        _, principal = store.create(direct, "alice")
        proxy.arm(command_on("HDEL", tokens_key(prefix)))
        assert store.revoke(through, principal.id) is True
        assert proxy.faults == 1 and store.list(direct) == []
        assert store.revoke(through, principal.id) is False, "a second revoke finds nothing"
    finally:
        through.close()
        direct.close()


# -- the HTTP API and the worker ------------------------------------------------------------------------


@pytest.fixture
def api(proxy: FaultProxy, prefix: str) -> Iterator[TestClient]:
    settings = Settings.of(
        redis_url=proxy.url, prefix=prefix, socket_timeout_s=SOCKET_TIMEOUT_S, rate_per_s=0.001, rate_burst=3
    )
    with TestClient(create_app(settings, run_worker=False)) as client:
        yield client


@pytest.mark.parametrize("script", ["schedule", "rate_limit"])
def test_http_schedule_creates_one_and_answers_with_it(
    api: TestClient, proxy: FaultProxy, redis_url: str, prefix: str, direct: Scheduler, script: str
) -> None:
    tokens = Tokens(redis_url, prefix)
    headers = tokens.service()
    body = {"recipients": ["alice"], "title": "t", "message": "m", "scheduled_at": "2035-01-01T00:00:00Z"}
    proxy.arm(evalsha_of(script))
    answer = api.post("/api/notifications/schedule/", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    assert proxy.faults == 1
    (nid,) = answer.json()["notification_ids"]
    assert _count(direct, lambda p: p.notifications) == 1 and direct.status(nid).recipient == "alice"
    # The burst is 3 and nothing refills in the test: one charge per request leaves room for two more.
    assert [api.get(f"/api/notifications/{nid}/", headers=headers).status_code for _ in range(2)] == [200, 200]
    tokens.redis.close()


def test_http_cancel_that_worked_answers_200(
    api: TestClient, proxy: FaultProxy, redis_url: str, prefix: str, direct: Scheduler
) -> None:
    tokens = Tokens(redis_url, prefix)
    (nid,) = direct.schedule(["alice"], "t", "m", delay=60, created_by="billing").notification_ids
    proxy.arm(evalsha_of("cancel"))
    answer = api.delete(f"/api/notifications/{nid}/cancel_scheduled/", headers=tokens.service())
    assert answer.status_code == 200, answer.text
    assert proxy.faults == 1 and answer.json()["scheduled_status"] == "cancelled"
    tokens.redis.close()


@pytest.mark.parametrize("script", ["claim", "publish_inbox", "ack"])
async def test_the_worker_delivers_each_once_and_promptly(
    proxy: FaultProxy, direct: Scheduler, core: Core, script: str
) -> None:
    """A lease of a minute: a batch stranded in processing by a lost claim reply would wait that long."""
    ids = _due_now(direct, ["alice", "bob", "carol"])
    scheduler = AsyncScheduler.from_url(proxy.url, socket_timeout_s=SOCKET_TIMEOUT_S, core=core)
    await scheduler.ensure_layout()
    # A default worker's claim delivers these websocket-only notifications itself; publish_inbox and ack run
    # when its inbox may not (in_claim=False), as they do for notifications with other channels.
    delivery = None if script == "claim" else InboxDelivery(scheduler.redis, core.keys, in_claim=False)
    worker = Worker(scheduler, delivery, lease_ms=60_000, idle_s=0.05)
    proxy.arm(evalsha_of(script))
    task = asyncio.create_task(worker.run())
    try:
        deadline = time.monotonic() + 10
        while direct.stats().totals.get("sent", 0) < 3:
            assert time.monotonic() < deadline, f"not all sent: {[direct.status(i).scheduled_status for i in ids]}"
            await asyncio.sleep(0.05)
    finally:
        worker.should_exit = True
        await task
        await scheduler.close()
    assert proxy.faults == 1
    p = core.keys.partitions[0]
    assert [direct.redis.xlen(p.inbox(r)) for r in ("alice", "bob", "carol")] == [1, 1, 1], "each pushed once"
    assert direct.stats().totals.get("claimed") == 3 and direct.stats().totals.get("sent") == 3
