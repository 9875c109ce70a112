"""Settings find the cluster (``INFO cluster`` on one URL, or seed nodes), spread partitions over its masters, and
the API of a process told it talks to a single server answers 503 with the fix, never 500."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis

from tests.clusterutil import LocalCluster
from tests.integration.wsutil import GatewayServer, open_socket, receive, until_ready
from zsched import AsyncScheduler
from zsched.delivery import InboxDelivery
from zsched.delivery.worker import Worker
from zsched.embedded import EmbeddedServer
from zsched.settings import Settings
from zsched.web.app import create_app
from zsched.web.auth import TokenStore, digest
from zsched.web.ratelimit import RateLimiter, bucket_key

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.cluster


@pytest.fixture
def prefix(redis_cluster: LocalCluster) -> Iterator[str]:
    name = f"zc-{uuid.uuid4().hex[:8]}"
    yield name
    cluster = redis.RedisCluster(host="127.0.0.1", port=redis_cluster.masters[0])
    for key in list(cluster.scan_iter(match=f"{name}:*", count=1000, target_nodes=cluster.PRIMARIES)):
        cluster.unlink(key)
    cluster.close()


def test_one_url_finds_the_cluster_and_six_partitions_use_every_master(
    redis_cluster: LocalCluster, prefix: str
) -> None:
    with Settings.of(redis_url=redis_cluster.url, prefix=prefix, partitions=6).scheduler() as zs:
        assert isinstance(zs.redis, redis.RedisCluster) and zs.core.keys.tags == "spread"
        result = zs.schedule([f"u{i}" for i in range(30)], "Spread", "out", delay=3600)
        assert zs.status(result.notification_ids[-1]).scheduled_status == "pending"
        owners = {zs.redis.get_node_from_key(p.due).name for p in zs.core.keys.partitions}
        assert len(owners) == 3
        holding = {zs.redis.get_node_from_key(p.due).name for p in zs.core.keys.partitions if zs.redis.exists(p.due)}
        assert len(holding) == 3, "30 recipients fill partitions on every master"


async def test_seed_nodes_give_an_asyncio_cluster_client(redis_cluster: LocalCluster, prefix: str) -> None:
    settings = Settings.of(redis_nodes=redis_cluster.seeds, prefix=prefix, partitions=3)
    async with settings.async_scheduler() as zs:
        assert isinstance(zs.redis, aioredis.RedisCluster) and zs.server is None
        result = await zs.schedule(["alice", "bob", "carol"], "Seeds", "work", delay=60)
        assert [(await zs.status(i)).scheduled_status for i in result.notification_ids] == ["pending"] * 3


def test_a_single_server_is_still_a_single_server(valkey: EmbeddedServer) -> None:
    with Settings.of(redis_url=valkey.url, prefix=f"zt-{uuid.uuid4().hex[:8]}", partitions=4).scheduler() as zs:
        assert type(zs.redis) is redis.Redis and zs.core.keys.tags == "plain"
        assert zs.core.keys.partitions[1].tag.endswith("{p1}")


def test_the_api_of_a_process_taking_the_cluster_for_a_server_answers_503(
    redis_cluster: LocalCluster, prefix: str
) -> None:
    cluster = redis.RedisCluster(host="127.0.0.1", port=redis_cluster.masters[0])
    token, _ = TokenStore(prefix).create(cluster, "ops", admin=True)
    auth = {"Authorization": f"Token {token}"}
    right = Settings.of(redis_url=redis_cluster.url, prefix=prefix, partitions=6)
    with TestClient(create_app(right, run_worker=False)) as client:
        assert client.get("/api/stats", headers=auth).status_code == 200
    # Pointed at the master owning the layout's slot, so it starts; every other key there answers MOVED.
    master = f"redis://127.0.0.1:{redis_cluster.masters[1]}/0"
    assert redis.RedisCluster.keyslot(cluster, f"{prefix}:{{meta}}:layout") in range(5461, 10923)
    wrong = right.replace(redis_url=master, redis_cluster="no", partition_tags="spread")
    with TestClient(create_app(wrong, run_worker=False), raise_server_exceptions=False) as client:
        r = client.get("/api/stats", headers=auth)
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "unavailable" and "ZSCHED_REDIS_CLUSTER" in r.json()["detail"]
    cluster.close()


async def test_tokens_and_rate_limit_buckets_spread_over_the_masters(redis_cluster: LocalCluster, prefix: str) -> None:
    cluster = redis.RedisCluster(host="127.0.0.1", port=redis_cluster.masters[0])
    store = TokenStore(prefix)
    made = [store.create(cluster, f"user{i}") for i in range(24)]
    assert len(store.list(cluster)) == 24
    holders = {cluster.get_node_from_key(store.keys_of(cluster, digest(t))[0]).name for t, _ in made}
    assert len(holders) == 3, "the token shards live on every master"
    assert store.verify(cluster, made[0][0]) == made[0][1]
    assert store.revoke(cluster, made[1][1].id) and store.verify(cluster, made[1][0]) is None
    assert store.list(cluster)[0].user == "user0" and len(store.list(cluster)) == 23
    cluster.close()

    connection = aioredis.RedisCluster(host="127.0.0.1", port=redis_cluster.masters[0])
    limiter = RateLimiter(connection, prefix, rate_per_s=1.0, burst=2)
    ids = [p.id for _, p in made]
    assert [(await limiter.take(ids[0])).allowed for _ in range(3)] == [True, True, False]
    assert (await limiter.take(ids[2])).allowed  # another caller's bucket, another slot
    assert len({connection.get_node_from_key(bucket_key(prefix, token_id)).name for token_id in ids}) == 3
    await connection.aclose()


def test_a_gateway_given_a_cluster_url_delivers_over_sharded_pubsub(redis_cluster: LocalCluster, prefix: str) -> None:
    gateway = GatewayServer(redis_cluster.url, prefix).start()  # a URL: the gateway finds the cluster itself
    try:
        assert isinstance(gateway.gateway.redis, aioredis.RedisCluster)
        with Settings.of(redis_url=redis_cluster.url, prefix=prefix).scheduler() as zs:
            token, _ = TokenStore(prefix).create(zs.redis, "gina")
            with open_socket(gateway.url(token)) as ws:
                assert until_ready(ws) == []
                (nid,) = zs.schedule(["gina"], "Sharded", "pub/sub", delay=0).notification_ids

                async def deliver() -> None:
                    async with AsyncScheduler(aioredis.RedisCluster.from_url(redis_cluster.url), core=zs.core) as az:
                        await Worker(az, InboxDelivery(az.redis, zs.core.keys)).tick()

                asyncio.run(deliver())
                got = receive(ws, timeout_s=15)
                assert (got["type"], got["id"], got["title"]) == ("notification", nid, "Sharded")
    finally:
        gateway.stop()
