"""Who may open a socket: the Origin check, the token (header or query), and the failed-token lockout."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from starlette.websockets import WebSocket

from ..auth import Principal, TokenStore
from ..ratelimit import FailedAuthLimiter


class Admission:
    """Decides, before a socket is accepted, whose it is; a refusal carries the reason sent with 1008."""

    def __init__(
        self,
        connection: aioredis.Redis,
        tokens: TokenStore,
        failures: FailedAuthLimiter,
        *,
        allowed_origins: Sequence[str] = (),
    ) -> None:
        self.redis = connection
        self.tokens = tokens
        self.failures = failures
        self.allowed_origins = frozenset(o.rstrip("/") for o in allowed_origins)

    async def admit(self, websocket: WebSocket) -> tuple[Principal | None, str]:
        """The socket's principal, or None and why it is refused."""
        origin = websocket.headers.get("origin")
        if origin is not None and not self.origin_allowed(origin, websocket.headers.get("host", "")):
            return None, "origin not allowed"
        token = websocket.query_params.get("token", "")
        authorization = websocket.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
        if not token:
            return None, "missing token: Authorization: Bearer <token> or ?token="
        address = websocket.client.host if websocket.client else "unknown"
        locked_ms = await self.failures.locked_ms(address)
        if locked_ms:  # checked before the token, so guessing cannot go faster than the failure budget
            return None, f"too many failed authentications; retry in {-(-locked_ms // 1000)} s"
        principal = await self.tokens.averify(self.redis, token)
        if principal is None:
            await self.failures.failed(address)
            return None, "invalid or revoked token"
        return principal, ""

    def origin_allowed(self, origin: str, host: str) -> bool:
        """A browser's page origin: its own host, or one of ``allowed_origins`` (``"*"``: any)."""
        origin = origin.rstrip("/")
        return "*" in self.allowed_origins or origin in self.allowed_origins or urlsplit(origin).netloc == host
