"""Sentinel as an option: zsched asks the Sentinel for the master of its service and uses it, sync and asyncio."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.clusterutil import LocalSentinel
from zsched.settings import Settings


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSentinel]:
    watched = LocalSentinel(tmp_path_factory.mktemp("sentinel"))
    try:
        yield watched.start()
    finally:
        watched.stop()


def test_the_sentinels_master_is_used(sentinel: LocalSentinel) -> None:
    settings = Settings.from_env(
        {"ZSCHED_REDIS_SENTINELS": sentinel.sentinels, "ZSCHED_PREFIX": f"zs-{uuid.uuid4().hex[:8]}"}
    )
    assert settings.server() is None and not settings.clustered()
    with settings.scheduler() as zs:
        result = zs.schedule(["alice"], "Via", "Sentinel", delay=60)
        assert zs.status(result.notification_ids[0]).scheduled_status == "pending"
    master = redis.Redis(port=sentinel.master)
    assert master.exists(f"{settings.redis.prefix}:{{meta}}:layout")
    master.close()


async def test_an_asyncio_scheduler_through_sentinel(sentinel: LocalSentinel) -> None:
    settings = Settings.of(redis_sentinels=sentinel.sentinels, prefix=f"zs-{uuid.uuid4().hex[:8]}")
    async with settings.async_scheduler() as zs:
        result = await zs.schedule(["bob"], "Via", "Sentinel", delay=60)
        assert (await zs.status(result.notification_ids[0])).scheduled_status == "pending"


def test_an_unknown_service_is_one_clear_error(sentinel: LocalSentinel) -> None:
    settings = Settings.of(redis_sentinels=sentinel.sentinels, redis_sentinel_service="nosuch", prefix="zs-x")
    with settings.scheduler() as zs, pytest.raises(Exception, match="nosuch"):
        zs.stats()
