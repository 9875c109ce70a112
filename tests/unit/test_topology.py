"""Which Redis a process connects to (a server, a cluster, Sentinel's master), from its settings, and how a Redis
error reaches an HTTP client: as a 503 that says what to do, never a 500."""

from __future__ import annotations

import pytest
import redis
from redis.exceptions import ClusterDownError, MovedError, RedisClusterException

from zsched.connection import connect, parse_nodes
from zsched.errors import ConfigError
from zsched.settings import Settings, SettingsError
from zsched.web.errors import as_api_error


def test_a_bad_topology_names_its_variable() -> None:
    with pytest.raises(SettingsError, match="ZSCHED_REDIS_CLUSTER"):
        Settings.from_env({"ZSCHED_REDIS_CLUSTER": "maybe"})
    with pytest.raises(SettingsError, match="ZSCHED_PARTITION_TAGS"):
        Settings.from_env({"ZSCHED_PARTITION_TAGS": "hashed"})


def test_seed_nodes_are_host_port_pairs() -> None:
    assert parse_nodes(["10.0.0.1:7000", " [::1]:7001"]) == [("10.0.0.1", 7000), ("::1", 7001)]
    with pytest.raises(ConfigError, match=r"ZSCHED_REDIS_NODES: '10.0.0.1' is not host:port"):
        parse_nodes(["10.0.0.1"])


def test_seed_nodes_mean_a_cluster_and_no_embedded_server() -> None:
    settings = Settings.from_env({"ZSCHED_REDIS_NODES": "10.0.0.1:7000,10.0.0.2:7000"})
    assert settings.redis.redis_nodes == ("10.0.0.1:7000", "10.0.0.2:7000")
    assert settings.external and settings.server() is None and settings.clustered()  # no probe: nodes say so
    assert settings.where() == "the Redis Cluster at 10.0.0.1:7000,10.0.0.2:7000"
    sentinel = Settings.of(redis_sentinels="s1:26379", redis_url="redis://:secret@ignored/0")
    assert not sentinel.clustered() and "secret" not in sentinel.where()


def test_auto_tags_spread_on_a_cluster_only() -> None:
    settings = Settings.of(partitions=4)
    assert settings.core(cluster=True).keys.tags == "spread"
    assert settings.core().keys.tags == "plain"
    assert Settings.of(partitions=4, partition_tags="plain").core(cluster=True).keys.tags == "plain"
    assert Settings.of(partitions=4, partition_tags="spread").core().keys.tags == "spread"


def test_nothing_to_connect_to_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ZSCHED_REDIS_URL, ZSCHED_REDIS_NODES or ZSCHED_REDIS_SENTINELS"):
        connect(None, cluster="no")


def test_a_single_server_url_is_asked_nothing_when_told_it_is_no_cluster() -> None:
    client = connect("redis://127.0.0.1:1/0", cluster="no")  # port 1: nothing listens, and nothing is asked
    assert type(client) is redis.Redis
    client.close()


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (MovedError("3999 127.0.0.1:7001"), "ZSCHED_REDIS_CLUSTER=auto or yes"),
        (ClusterDownError("CLUSTERDOWN The cluster is down"), "CLUSTERDOWN"),
        (redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'"), "OOM"),
        (RedisClusterException("Redis Cluster cannot be connected"), "cannot be connected"),
    ],
)
def test_redis_errors_are_503_saying_why(error: Exception, says: str) -> None:
    mapped = as_api_error(error)
    assert mapped is not None and mapped.status == 503 and says in mapped.body.detail
    assert mapped.headers["Retry-After"]
