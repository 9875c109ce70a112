"""Who may open a socket: the Origin check, the token (header or query), the failed-token lockout, and how
often one token may connect."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import msgspec
import redis.asyncio as aioredis
from starlette.websockets import WebSocket

from ..auth import Principal, TokenStore, digest
from ..ratelimit import FailedAuthLimiter, RateLimiter
from .socket import CLOSE_POLICY, CLOSE_TRY_AGAIN


class Admitted(msgspec.Struct, frozen=True):
    """A socket that may open: whose it is, and the digest of its token (to notice a revocation)."""

    principal: Principal
    digest: str


class Refused(msgspec.Struct, frozen=True):
    """A socket closed before anything is sent: the close code and the reason sent with it."""

    code: int
    reason: str


class Admission:
    """Decides, before a socket is accepted, whose it is; each connect spends one of its token's
    ``connects_burst`` connects, refilled at ``connects_per_s`` (the Redis bucket of ``lua/rate_limit.lua``,
    shared by every gateway on one Redis)."""

    def __init__(
        self,
        connection: aioredis.Redis,
        prefix: str,
        tokens: TokenStore,
        failures: FailedAuthLimiter,
        *,
        allowed_origins: Sequence[str] = (),
        connects_per_s: float = 1.0,
        connects_burst: int = 20,
    ) -> None:
        self.redis = connection
        self.tokens = tokens
        self.failures = failures
        self.allowed_origins = frozenset(o.rstrip("/") for o in allowed_origins)
        self.connects = RateLimiter(connection, prefix, rate_per_s=connects_per_s, burst=connects_burst)

    async def admit(self, websocket: WebSocket) -> Admitted | Refused:
        """The socket's principal, or the close code and reason it is refused with."""
        origin = websocket.headers.get("origin")
        if origin is not None and not self.origin_allowed(origin, websocket.headers.get("host", "")):
            return Refused(CLOSE_POLICY, "origin not allowed")
        token = websocket.query_params.get("token", "")
        scheme, _, value = websocket.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() in ("token", "bearer") and value.strip():
            token = value.strip()
        if not token:
            return Refused(CLOSE_POLICY, "missing token: Authorization: Token <token> (or Bearer), or ?token=")
        address = websocket.client.host if websocket.client else "unknown"
        principal = await self.tokens.averify(self.redis, token)
        if principal is None:  # charged and checked in one step; a right token always passes (see ratelimit)
            locked_ms = await self.failures.failed(address)
            if locked_ms:
                return Refused(CLOSE_POLICY, f"too many failed authentications; retry in {-(-locked_ms // 1000)} s")
            return Refused(CLOSE_POLICY, "invalid, expired or revoked token")
        # Each connect reads the inbox: a reconnect loop (or a script) must not turn into a Redis load.
        verdict = await self.connects.take(f"ws-connect:{principal.id}")
        if not verdict.allowed:
            return Refused(
                CLOSE_TRY_AGAIN,
                f"too many connects with this token (at most {self.connects.burst} at once, "
                f"{self.connects.rate_per_s:g} a second); retry in {-(-verdict.retry_after_ms // 1000)} s",
            )
        return Admitted(principal, digest(token))

    def origin_allowed(self, origin: str, host: str) -> bool:
        """A browser's page origin: its own host, or one of ``allowed_origins`` (``"*"``: any)."""
        origin = origin.rstrip("/")
        return "*" in self.allowed_origins or origin in self.allowed_origins or urlsplit(origin).netloc == host
