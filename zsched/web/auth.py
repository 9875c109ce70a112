"""API tokens: who a caller is and what it may do. Shared by the HTTP API and the WebSocket gateway.

A token is shown once, when created; Redis keeps only its SHA-256 digest, in one HASH
(``<prefix>:{auth}:tokens``: digest -> token JSON), so a leaked keyspace leaks no usable secret.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

import msgspec

SCOPE_SCHEDULE_ANY = "schedule:any"
"""Scope of a service token: may schedule for recipients other than itself."""
TOKEN_PREFIX = "zs_"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who a token belongs to and what it may do. ``id`` is the digest's first 12 hex characters."""

    id: str
    user: str
    scopes: tuple[str, ...] = ()
    admin: bool = False
    created_at: int = 0
    name: str | None = None

    def can_schedule_for_others(self) -> bool:
        """Whether it may schedule for recipients other than itself (service tokens and admins)."""
        return self.admin or SCOPE_SCHEDULE_ANY in self.scopes


def digest(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_key(prefix: str) -> str:
    """HASH: token digest -> Principal JSON."""
    return f"{prefix}:{{auth}}:tokens"


_decode = msgspec.json.Decoder(Principal).decode
_encode = msgspec.json.Encoder().encode


class TokenStore:
    """Creates, verifies, lists and revokes tokens over a sync or asyncio redis-py connection."""

    def __init__(self, prefix: str = "zsched") -> None:
        self.key = tokens_key(prefix)

    def new(
        self, user: str, *, scopes: tuple[str, ...] = (), admin: bool = False, name: str | None = None
    ) -> tuple[str, Principal, bytes]:
        """A fresh secret, its principal, and the JSON to store under its digest (nothing is written)."""
        if not user or len(user) > 128 or any(c.isspace() or not c.isprintable() for c in user):
            raise ValueError(f"user must be 1 to 128 printable characters without spaces; got {user!r}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        principal = Principal(
            id=digest(token)[:12],
            user=user,
            scopes=tuple(sorted(set(scopes))),
            admin=admin,
            created_at=int(time.time() * 1000),
            name=name,
        )
        return token, principal, _encode(principal)

    def create(self, r: Any, user: str, **options: Any) -> tuple[str, Principal]:
        """Create a token for ``user`` (sync connection); returns the secret (shown once) and principal."""
        token, principal, raw = self.new(user, **options)
        r.hset(self.key, digest(token), raw)
        return token, principal

    def verify(self, r: Any, token: str) -> Principal | None:
        """The principal of a valid token (sync connection), or None."""
        raw = r.hget(self.key, digest(token)) if token.startswith(TOKEN_PREFIX) else None
        return _decode(raw) if raw else None

    async def averify(self, r: Any, token: str) -> Principal | None:
        """The principal of a valid token (asyncio connection), or None."""
        raw = await r.hget(self.key, digest(token)) if token.startswith(TOKEN_PREFIX) else None
        return _decode(raw) if raw else None

    def list(self, r: Any) -> list[Principal]:
        """Every token's principal, oldest first; never the secrets (Redis does not have them)."""
        return sorted((_decode(v) for v in r.hvals(self.key)), key=lambda p: p.created_at)

    def revoke(self, r: Any, token_or_id: str) -> bool:
        """Revoke by the secret itself or by the id shown in ``list``; whether one was revoked."""
        if token_or_id.startswith(TOKEN_PREFIX):
            return bool(r.hdel(self.key, digest(token_or_id)))
        matches = [d for d in r.hkeys(self.key) if d.decode().startswith(token_or_id)] if len(token_or_id) >= 6 else []
        if len(matches) != 1:
            return False
        return bool(r.hdel(self.key, matches[0]))
