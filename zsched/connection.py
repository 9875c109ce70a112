"""How zsched talks to Redis: bounded timeouts and retries for every connection, and what the two drivers
(``client.Scheduler`` and ``client.AsyncScheduler``) share: the core, the connection, its scripts, and how one
step of an operation is sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.retry
import redis.sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisClusterException

from .embedded import EmbeddedServer
from .engine.core import Command, Core, Script, Step
from .engine.scripts import Scripts
from .errors import ConfigError

UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError)
T = TypeVar("T")

SOCKET_TIMEOUT_S = 5.0
"""How long a connection waits for one reply before it gives up on it (and retries, or raises)."""
CONNECT_TIMEOUT_S = 2.0
"""How long a connection waits to be established."""
RETRIES = 3
"""How often a command is sent again after a connection error or a timeout (backoff 50 ms doubling, at most
1 s, jittered). Every script that changes state answers a resent call with its first outcome (see
``engine.base.OP_TTL_MS``), so a retry never runs one twice; in all, one call waits at most about
4 x 5 s + 3 s = 23 s."""


def connection_options(
    *,
    socket_timeout_s: float = SOCKET_TIMEOUT_S,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    retries: int = RETRIES,
    for_asyncio: bool = False,
) -> dict[str, Any]:
    """The redis-py options every zsched connection is made with: bounded socket and connect timeouts, and a
    retry policy (``retries`` resends, jittered exponential backoff), for a sync or (``for_asyncio``) an asyncio
    client."""
    backoff = ExponentialWithJitterBackoff(base=0.05, cap=1.0)
    retry = redis.asyncio.retry.Retry(backoff, retries) if for_asyncio else redis.retry.Retry(backoff, retries)
    return {"socket_timeout": socket_timeout_s, "socket_connect_timeout": connect_timeout_s, "retry": retry}


Topology = Literal["auto", "yes", "no"]
"""Whether a URL names a Redis Cluster: ``auto`` asks the server (``INFO cluster``), ``yes`` and ``no`` say so."""
CLUSTER_ERRORS = (RedisClusterException,)
"""What redis-py's cluster client raises outside ``redis.RedisError`` (no node covers a slot, no node answers)."""


def is_cluster(connection: Any) -> bool:
    """Whether ``connection`` is a Redis Cluster client (sync or asyncio)."""
    return isinstance(connection, redis.RedisCluster | aioredis.RedisCluster)


def cluster_enabled(url: str, *, connect_timeout_s: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether the server at ``url`` runs in cluster mode (``INFO cluster``); False when it cannot be asked."""
    probe = redis.Redis.from_url(url, socket_timeout=connect_timeout_s, socket_connect_timeout=connect_timeout_s)
    try:
        return bool(probe.info("cluster").get("cluster_enabled"))
    except (redis.RedisError, OSError):  # down, or an ACL user that may not run INFO: a single server is assumed
        return False
    finally:
        probe.close()


def parse_nodes(nodes: Sequence[str], what: str = "ZSCHED_REDIS_NODES") -> list[tuple[str, int]]:
    """``["10.0.0.1:7000", "[::1]:7001"]`` as (host, port) pairs; a bad entry is a ``ConfigError`` naming it."""
    pairs = []
    for node in nodes:
        host, _, port = node.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"{what}: {node!r} is not host:port; write e.g. 10.0.0.1:7000,10.0.0.2:7000", what)
        pairs.append((host.strip("[]"), int(port)))
    return pairs


def connect(
    url: str | None,
    *,
    cluster: Topology = "auto",
    nodes: Sequence[str] = (),
    sentinels: Sequence[str] = (),
    sentinel_service: str = "mymaster",
    for_asyncio: bool = False,
    max_connections: int | None = None,
    **limits: Any,
) -> Any:
    """A redis-py client for a single server, a Redis Cluster or a Sentinel-watched master, with ``limits``
    (``connection_options``'s keywords) on every connection.

    ``sentinels`` (``host:port``) ask Sentinel for ``sentinel_service``'s master; otherwise a cluster is used
    when ``cluster`` is ``yes``, or seed ``nodes`` (``host:port``) are given, or ``cluster`` is ``auto`` and
    the server at ``url`` runs in cluster mode. ``url`` carries the credentials in every case, and the address
    when no nodes or sentinels are given."""
    options = connection_options(**limits, for_asyncio=for_asyncio)
    if max_connections is not None:
        options["max_connections"] = max_connections
    credentials = _credentials(url)
    if sentinels:
        watch = redis.asyncio.sentinel.Sentinel if for_asyncio else redis.sentinel.Sentinel
        pool_options = {k: v for k, v in options.items() if k != "max_connections"}
        sentinel = watch(parse_nodes(sentinels, "ZSCHED_REDIS_SENTINELS"), **pool_options, **credentials)
        return sentinel.master_for(sentinel_service, **pool_options)
    if url is None and not nodes:
        raise ConfigError("no Redis to connect to: set ZSCHED_REDIS_URL, ZSCHED_REDIS_NODES or ZSCHED_REDIS_SENTINELS")
    if nodes or cluster == "yes" or (cluster == "auto" and url is not None and cluster_enabled(url)):
        if for_asyncio:
            seeds = [aioredis.cluster.ClusterNode(h, p) for h, p in parse_nodes(nodes)]
            if seeds:
                return aioredis.RedisCluster(startup_nodes=seeds, **options, **credentials)
            return aioredis.RedisCluster.from_url(str(url), **options)
        if nodes:
            startup = [redis.cluster.ClusterNode(h, p) for h, p in parse_nodes(nodes)]  # type: ignore[no-untyped-call]
            return redis.RedisCluster(startup_nodes=startup, **options, **credentials)
        return redis.RedisCluster.from_url(str(url), **options)
    return (aioredis.Redis if for_asyncio else redis.Redis).from_url(str(url), **options)


def sentinel_of(connection: Any) -> Any:
    """The ``Sentinel`` a client from ``connect(sentinels=...)`` asks for its master (its own connections are
    closed apart from the client's), or None."""
    return getattr(getattr(connection, "connection_pool", None), "sentinel_manager", None)


def _credentials(url: str | None) -> dict[str, Any]:
    """The username, password and TLS a URL asks for (what seed nodes and Sentinel's master are reached with)."""
    if url is None:
        return {}
    parts = urlsplit(url)
    found: dict[str, Any] = {}
    if parts.username:
        found["username"] = unquote(parts.username)
    if parts.password:
        found["password"] = unquote(parts.password)
    if parts.scheme == "rediss":
        found["ssl"] = True
    return found


def queue_step(target: Any, scripts: Scripts, step: Step) -> Any:
    """Send one step to a client or pipeline; returns its reply (or awaitable, or the pipeline)."""
    if isinstance(step, Script):
        return scripts[step.name](keys=step.keys, args=step.args, client=target)
    assert isinstance(step, Command)
    return target.execute_command(*step.args)


def send_step(client: Any, scripts: Scripts, step: Step) -> Any:
    """Run one step on a sync client (not a pipeline) and return its reply: ``queue_step``'s work, less per call."""
    if type(step) is Script:
        return scripts.run(client, step.name, step.keys, step.args)
    return client.execute_command(*step.args)


async def send_step_async(client: Any, scripts: Scripts, step: Step) -> Any:
    """``send_step`` on an asyncio client."""
    if type(step) is Script:
        return await scripts.run_async(client, step.name, step.keys, step.args)
    return await client.execute_command(*step.args)


class Driver:
    """What both faces share: the core, the connection, the scripts registered on it."""

    def __init__(self, connection: Any, core: Core | None, server: EmbeddedServer | None, **options: Any) -> None:
        self.redis = connection
        self.core = core or Core(**options)
        self.scripts = Scripts(connection)
        self.server = server
        self.layout_checked = False  # the keyspace's recorded partition count is checked before the first call
        # Redis Cluster pipelines refuse EVALSHA, so there script steps go one call each.
        self._pipeline_scripts = not is_cluster(connection)

    def _one_by_one(self, steps: Sequence[Step]) -> bool:
        return len(steps) == 1 or (not self._pipeline_scripts and any(isinstance(s, Script) for s in steps))
