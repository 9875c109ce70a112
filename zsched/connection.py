"""How zsched talks to Redis: bounded timeouts and retries for every connection, and what the two drivers
(``client.Scheduler`` and ``client.AsyncScheduler``) share: the core, the connection, its scripts, and how one
step of an operation is sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
import redis.asyncio.retry
import redis.retry
from redis.backoff import ExponentialWithJitterBackoff

from .embedded import EmbeddedServer
from .engine.core import Command, Core, Script, Step
from .engine.scripts import Scripts

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


def queue_step(target: Any, scripts: Scripts, step: Step) -> Any:
    """Send one step to a client or pipeline; returns its reply (or awaitable, or the pipeline)."""
    if isinstance(step, Script):
        return scripts[step.name](keys=step.keys, args=step.args, client=target)
    assert isinstance(step, Command)
    return target.execute_command(*step.args)


class Driver:
    """What both faces share: the core, the connection, the scripts registered on it."""

    def __init__(self, connection: Any, core: Core | None, server: EmbeddedServer | None, **options: Any) -> None:
        self.redis = connection
        self.core = core or Core(**options)
        self.scripts = Scripts(connection)
        self.server = server
        self.layout_checked = False  # the keyspace's recorded partition count is checked before the first call
        # Redis Cluster pipelines refuse EVALSHA, so there script steps go one call each.
        self._pipeline_scripts = not isinstance(connection, redis.RedisCluster | aioredis.RedisCluster)

    def _one_by_one(self, steps: Sequence[Step]) -> bool:
        return len(steps) == 1 or (not self._pipeline_scripts and any(isinstance(s, Script) for s in steps))
