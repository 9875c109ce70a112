"""Shared fixtures: a real server for every integration test, a fresh key prefix for each test.

Integration tests run against the bundled valkey-server (started once per session) and, when
ZSCHED_TEST_REDIS_URL is set, again against that Redis. The system Redis is shared: every test uses its
own key prefix and deletes only its own keys.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from tests.clusterutil import LocalCluster
from zsched import AsyncScheduler, Core, Keyspace, RetryPolicy, Scheduler
from zsched.embedded import EmbeddedServer

SYSTEM_REDIS = os.environ.get("ZSCHED_TEST_REDIS_URL")


class ManualClock:
    """A pinned clock in epoch ms that tests move by hand; passed to scripts instead of Redis TIME."""

    def __init__(self, start_ms: int | None = None) -> None:
        self.ms = start_ms if start_ms is not None else int(time.time() * 1000)

    def __call__(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(tmp_path_factory.mktemp("valkey"), persistent=False).start()
    yield server
    server.stop()


@pytest.fixture(params=["valkey", "system-redis"])
def redis_url(request: pytest.FixtureRequest) -> str:
    if request.param == "system-redis":
        if not SYSTEM_REDIS:
            pytest.skip("ZSCHED_TEST_REDIS_URL is not set")
        return SYSTEM_REDIS
    server: EmbeddedServer = request.getfixturevalue("valkey")
    return server.url


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"zt-{uuid.uuid4().hex[:10]}"
    yield name
    r = redis.Redis.from_url(redis_url)
    keys = list(r.scan_iter(match=f"{name}:*", count=1000))
    if keys:
        r.unlink(*keys)
    r.close()


@pytest.fixture
def keyspace(prefix: str) -> Keyspace:
    return Keyspace(prefix)


@pytest.fixture
def policy() -> RetryPolicy:
    """Millisecond retries so tests never wait minutes."""
    return RetryPolicy(delays_ms=(50, 100, 200))


@pytest.fixture
def zs(redis_url: str, keyspace: Keyspace, policy: RetryPolicy) -> Iterator[Scheduler]:
    scheduler = Scheduler(redis.Redis.from_url(redis_url), core=Core(keyspace, retry=policy))
    yield scheduler
    scheduler.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def pinned(redis_url: str, keyspace: Keyspace, policy: RetryPolicy, clock: ManualClock) -> Iterator[Scheduler]:
    """A scheduler whose scripts use ``clock`` instead of the server's TIME."""
    scheduler = Scheduler(redis.Redis.from_url(redis_url), core=Core(keyspace, retry=policy, clock=clock))
    yield scheduler
    scheduler.close()


@pytest.fixture
async def azs(redis_url: str, keyspace: Keyspace, policy: RetryPolicy) -> AsyncIterator[AsyncScheduler]:
    import redis.asyncio as aioredis

    scheduler = AsyncScheduler(aioredis.Redis.from_url(redis_url), core=Core(keyspace, retry=policy))
    yield scheduler
    await scheduler.close()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real three-master Redis Cluster, each master with a replica (tests/clusterutil.py), for the session."""
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()
