"""Who is calling the HTTP API: the token, failed authentications per client address, the per-token rate limit.

A right token always passes. A wrong one is charged to the client address in one atomic step: 401 while the
address has failures left, 429 (Retry-After) once it has none. A missing header is no guess.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from ..settings import ApiSettings
from .auth import Principal, TokenStore
from .errors import ApiError
from .ratelimit import FailedAuthLimiter, RateLimiter

CHALLENGE = 'Token realm="zsched", Bearer realm="zsched"'


class Callers:
    """Authenticates requests; ``attach`` gives it the connection (and clock) to count on."""

    def __init__(self, prefix: str, limits: ApiSettings) -> None:
        self.prefix = prefix
        self.limits = limits
        self.tokens = TokenStore(prefix)
        self.failures: FailedAuthLimiter | None = None
        self._limiter: RateLimiter | None = None

    def attach(self, connection: Any, clock: Callable[[], int] | None) -> None:
        """Count requests and failures on ``connection`` (shared by every API process and the gateway)."""
        lim = self.limits
        self._limiter = RateLimiter(
            connection, self.prefix, rate_per_s=lim.rate_per_s, burst=lim.rate_burst, clock=clock
        )
        self.failures = FailedAuthLimiter(
            connection, self.prefix, rate_per_s=lim.auth_fail_per_s, burst=lim.auth_fail_burst, clock=clock
        )

    def detach(self) -> None:
        """Stop counting (the app is shutting down)."""
        self._limiter = self.failures = None

    async def authenticate(self, request: Request, connection: Any) -> Principal:
        """The caller's principal from its token, after taking one request from its rate-limit bucket."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.strip().partition(" ")
        if not header:
            raise _unauthorized(
                "send your token as 'Authorization: Token <token>' (or Bearer); "
                "create one with `zsched token create --user ID`"
            )
        failures, limiter = self.failures, self._limiter
        if failures is None or limiter is None:
            raise ApiError(503, "the service is starting or stopping; retry shortly", headers={"Retry-After": "1"})
        address = request.client.host if request.client else "unknown"
        if scheme.lower() not in ("token", "bearer") or not token.strip():
            await _charge(failures, address)
            raise _unauthorized(
                f"the Authorization header must be 'Token <token>' or 'Bearer <token>'; got scheme {scheme[:20]!r}"
            )
        principal = await self.tokens.averify(connection, token.strip())
        if principal is None:
            await _charge(failures, address)
            raise _unauthorized("the token is unknown, expired or revoked; create one with `zsched token create`")
        verdict = await limiter.take(principal.id)
        if not verdict.allowed:
            seconds = max(1, -(-verdict.retry_after_ms // 1000))
            raise ApiError(
                429,
                f"rate limit of {self.limits.rate_per_s:g} requests/s (burst {self.limits.rate_burst}) "
                f"reached for this token; retry in {seconds} s",
                headers={"Retry-After": str(seconds)},
            )
        return principal


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, detail, "Authorization", headers={"WWW-Authenticate": CHALLENGE})


async def _charge(failures: FailedAuthLimiter, address: str) -> None:
    """Count a failed authentication; 429 once the address has none left."""
    locked_ms = await failures.failed(address)
    if locked_ms:
        seconds = -(-locked_ms // 1000)
        raise ApiError(
            429,
            f"too many failed authentications from {address}; retry in {seconds} s",
            "Authorization",
            headers={"Retry-After": str(seconds)},
        )
