"""Revoked and expired tokens lose their open sockets: every ``interval_s`` one HMGET looks up the token
digests of all open sockets, and a socket whose token is gone (``TokenStore.revoke`` deletes it) or has
expired is closed with 1008."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

import redis
import redis.asyncio as aioredis

from ...connection import is_cluster
from ..auth import TokenStore
from .socket import CLOSE_POLICY, Socket

log = logging.getLogger("zsched.gateway")

CHUNK = 1000
"""Digests per HMGET, so a gateway with many sockets does not send one huge command."""


class RevocationWatch:
    """Re-verifies the tokens of ``sockets()`` every ``interval_s`` (``start``/``stop``)."""

    def __init__(
        self,
        connection: aioredis.Redis,
        tokens: TokenStore,
        sockets: Callable[[], Iterable[Socket]],
        *,
        interval_s: float = 0.5,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0; got {interval_s}")
        self.redis = connection
        self.tokens = tokens
        self.sockets = sockets
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start checking."""
        self._task = asyncio.create_task(self._run(), name="zsched-gateway-revocations")

    async def stop(self) -> None:
        """Stop checking."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check(self) -> int:
        """Close (1008) every open socket whose token was revoked or has expired; how many were closed."""
        # No list per socket: what is built here lives across the HMGETs, so the garbage collector would carry
        # thousands of objects into its oldest generation every interval_s, and a full collection of a gateway
        # holding 10,000 sockets stalls its loop for hundreds of milliseconds.
        digests = {client.digest for client in self.sockets()}
        by_key: dict[str, list[str]] = {}  # one hash on a single server; a shard's on a cluster
        if is_cluster(self.redis):
            for token_digest in digests:
                by_key.setdefault(self.tokens.keys_of(self.redis, token_digest)[0], []).append(token_digest)
        elif digests:  # asked once, not per socket: this runs every interval_s over every open socket
            by_key[self.tokens.keys_of(self.redis, next(iter(digests)))[0]] = list(digests)
        gone: set[str] = set()
        for key, listed in by_key.items():
            await self._gone_in(key, listed, gone)
        closed = 0
        if gone:
            for client in list(self.sockets()):
                if client.digest in gone:
                    client.close(CLOSE_POLICY, "token revoked or expired")
                    closed += 1
        return closed

    async def _gone_in(self, key: str, digests: list[str], gone: set[str]) -> None:
        """Add to ``gone`` those of ``digests`` (stored in hash ``key``) whose token was revoked or has expired."""
        for start in range(0, len(digests), CHUNK):
            chunk = digests[start : start + CHUNK]
            for found, token_digest in zip(await self.redis.hmget(key, chunk), chunk, strict=True):
                if not self.tokens.still_valid(found):
                    gone.add(token_digest)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except (redis.RedisError, OSError) as exc:  # a Redis outage also drops the pub/sub: sockets resume
                log.warning("could not re-check the tokens of open sockets: %s", exc)
