"""Per-token rate limiting: a token bucket kept in Redis by ``lua/rate_limit.lua``, so every API process
behind one Redis shares each caller's budget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from ..engine.base import OP_TTL_MS, new_op_id
from ..engine.scripts import Scripts
from ..errors import ConfigError


def bucket_key(prefix: str, token_id: str) -> str:
    """HASH: one caller's bucket (tokens left, time of the last refill); expires once full again. Its hash tag
    names the caller (``{rate:<token id>}``), so on a cluster the buckets spread over slots."""
    return f"{prefix}:{{rate:{token_id}}}:bucket"


def op_key(prefix: str, token_id: str, op_id: str) -> str:
    """STRING: one rate_limit call's verdict, kept ``OP_TTL_MS`` so a retry of that call is not charged twice;
    in its bucket's slot."""
    return f"{prefix}:{{rate:{token_id}}}:op:{op_id}"


class Verdict(msgspec.Struct, frozen=True):
    """Whether a request may go on, what is left of the bucket, and how long to wait when it may not."""

    allowed: bool
    remaining: int
    retry_after_ms: int


class RateLimiter:
    """Takes ``cost`` tokens per request from a bucket of ``burst`` refilled at ``rate_per_s``."""

    def __init__(
        self, connection: Any, prefix: str, *, rate_per_s: float, burst: int, clock: Callable[[], int] | None = None
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ConfigError(f"rate_per_s must be > 0 and burst >= 1; got {rate_per_s} and {burst}")
        self.prefix = prefix
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clock = clock
        self.script = Scripts(connection)["rate_limit"]

    async def take(self, token_id: str, cost: int = 1) -> Verdict:
        """Spend ``cost`` tokens of ``token_id``'s bucket if it has them (asyncio connection); one charge however
        often a lost reply makes the connection resend the call."""
        now = "" if self.clock is None else str(self.clock())
        reply = await self.script(
            keys=[bucket_key(self.prefix, token_id), op_key(self.prefix, token_id, new_op_id())],
            args=[now, repr(float(self.rate_per_s)), self.burst, cost, OP_TTL_MS],
        )
        return Verdict(allowed=int(reply[0]) == 1, remaining=int(reply[1]), retry_after_ms=int(reply[2]))


class FailedAuthLimiter:
    """Counts failed authentications per client address: ``burst`` at once, then ``rate_per_s`` a second.

    Only failures are charged, and a right token always passes: many clients behind one NAT or proxy share
    an address, and one of them guessing must not lock the others out. The limit bounds what a flood of bad
    tokens from one address costs; against guessing itself, a token's 256 random bits are the protection.
    """

    def __init__(
        self,
        connection: Any,
        prefix: str,
        *,
        rate_per_s: float = 1.0,
        burst: int = 20,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.limiter = RateLimiter(connection, prefix, rate_per_s=rate_per_s, burst=burst, clock=clock)

    @staticmethod
    def bucket(address: str) -> str:
        """The bucket id of one client address (token ids are hex, so the two never meet)."""
        return f"auth-fail:{address}"

    async def failed(self, address: str) -> int:
        """Charge one failed authentication to ``address`` in one atomic step (check and charge together, so
        parallel failures cannot all slip past a check); 0 if it was within the budget, else the ms until
        the address has failures left again."""
        verdict = await self.limiter.take(self.bucket(address))
        return 0 if verdict.allowed else max(1, verdict.retry_after_ms)
