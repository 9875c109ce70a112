"""API tokens: who a caller is and what it may do. Shared by the HTTP API and the WebSocket gateway.

A token is shown once, when created; Redis keeps only its SHA-256 digest, in one HASH
(``<prefix>:{auth}:tokens``: digest -> token JSON), so a leaked keyspace leaks no usable secret. A token may
expire (``expires_at``); an expired one verifies like a revoked one, on every use. When each token was last
used is a second HASH (``<prefix>:{auth}:tokens_used``: digest -> epoch ms), written at most once a
``USED_EVERY_MS`` per token, so a verification stays one round trip unless that stamp is stale.

On a Redis Cluster every request's verification would land on the one node owning ``{auth}``, so there the
two hashes are split in ``SHARDS`` by the digest's first hex digit (``<prefix>:{auth:7}:tokens``, ...): each
verification still reads one slot, and the slots spread over the nodes.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any

import msgspec

from ..connection import is_cluster

SCOPE_SCHEDULE_ANY = "schedule:any"
"""Scope of a service token: may schedule for recipients other than itself."""
SCOPE_CONTACTS_WRITE = "contacts:write"
"""Scope of a service token: may read, set and erase any recipient's contact data (and erase their inbox)."""
SCOPE_TEMPLATES_WRITE = "templates:write"
"""Scope of a service token: may save and delete templates (reading and scheduling with them needs none)."""
SCOPE_PREFERENCES_WRITE = "preferences:write"
"""Scope of a service token: may read and set any recipient's zone, quiet hours and opt-outs (not how they are
reached)."""
TOKEN_PREFIX = "zs_"
USED_EVERY_MS = 60_000
"""A token's last-use stamp is rewritten only when it is at least this old."""


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who a token belongs to and what it may do. ``id`` is the digest's first 12 hex characters."""

    id: str
    user: str
    scopes: tuple[str, ...] = ()
    admin: bool = False
    created_at: int = 0
    name: str | None = None
    expires_at: int | None = None  # epoch ms; None: never

    def can_schedule_for_others(self) -> bool:
        """Whether it may schedule for recipients other than itself (service tokens and admins)."""
        return self.admin or SCOPE_SCHEDULE_ANY in self.scopes

    def may_manage_contact(self, recipient: str) -> bool:
        """Whether it may read, set and erase ``recipient``'s contact data: the recipient themself, an admin, or a
        token with the ``contacts:write`` scope."""
        return self.admin or self.user == recipient or SCOPE_CONTACTS_WRITE in self.scopes

    def may_set_preferences(self, recipient: str) -> bool:
        """Whether it may read and set ``recipient``'s zone, quiet hours and opt-outs: whoever may manage their contact
        data, or a token with the ``preferences:write`` scope."""
        return self.may_manage_contact(recipient) or SCOPE_PREFERENCES_WRITE in self.scopes

    def expired(self, now_ms: int) -> bool:
        """Whether the token has expired at ``now_ms``."""
        return self.expires_at is not None and now_ms >= self.expires_at


def digest(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


SHARDS = "0123456789abcdef"
"""On a cluster, the token hashes are split by a digest's first hex digit: one shard each."""


def tokens_key(prefix: str, shard: str = "") -> str:
    """HASH: token digest -> Principal JSON (on a cluster, those of digests starting with ``shard``)."""
    return f"{prefix}:{{auth{':' if shard else ''}{shard}}}:tokens"


def used_key(prefix: str, shard: str = "") -> str:
    """HASH: token digest -> when it was last used (epoch ms, at most ``USED_EVERY_MS`` stale)."""
    return f"{prefix}:{{auth{':' if shard else ''}{shard}}}:tokens_used"


def _wall_ms() -> int:
    return int(time.time() * 1000)


_decode = msgspec.json.Decoder(Principal).decode
_encode = msgspec.json.Encoder().encode


class TokenStore:
    """Creates, verifies, lists and revokes tokens over a sync or asyncio redis-py connection; ``clock_ms``
    (epoch ms) decides creation times, expiry and last use."""

    def __init__(self, prefix: str = "zsched", *, clock_ms: Callable[[], int] = _wall_ms) -> None:
        self.prefix = prefix
        self.key = tokens_key(prefix)  # on a single server (see ``keys_of``)
        self.used_key = used_key(prefix)
        self.clock_ms = clock_ms

    def keys_of(self, r: Any, token_digest: str) -> tuple[str, str]:
        """The tokens hash and the last-use hash holding ``token_digest`` over connection ``r``."""
        shard = token_digest[0] if is_cluster(r) else ""
        return tokens_key(self.prefix, shard), used_key(self.prefix, shard)

    def all_keys(self, r: Any) -> list[tuple[str, str]]:
        """Every (tokens, last-use) pair of hashes over connection ``r``: one pair, or one per shard on a cluster."""
        shards = list(SHARDS) if is_cluster(r) else [""]
        return [(tokens_key(self.prefix, shard), used_key(self.prefix, shard)) for shard in shards]

    def new(
        self,
        user: str,
        *,
        scopes: tuple[str, ...] = (),
        admin: bool = False,
        name: str | None = None,
        expires_in_ms: int | None = None,
    ) -> tuple[str, Principal, bytes]:
        """A fresh secret, its principal, and the JSON to store under its digest (nothing is written)."""
        if not user or len(user) > 128 or any(c.isspace() or not c.isprintable() for c in user):
            raise ValueError(f"user must be 1 to 128 printable characters without spaces; got {user!r}")
        if expires_in_ms is not None and expires_in_ms <= 0:
            raise ValueError(f"expires_in_ms must be positive; got {expires_in_ms}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now_ms = self.clock_ms()
        principal = Principal(
            id=digest(token)[:12],
            user=user,
            scopes=tuple(sorted(set(scopes))),
            admin=admin,
            created_at=now_ms,
            name=name,
            expires_at=None if expires_in_ms is None else now_ms + expires_in_ms,
        )
        return token, principal, _encode(principal)

    def create(self, r: Any, user: str, **options: Any) -> tuple[str, Principal]:
        """Create a token for ``user`` (sync connection); returns the secret (shown once) and principal."""
        token, principal, raw = self.new(user, **options)
        r.hset(self.keys_of(r, digest(token))[0], digest(token), raw)
        return token, principal

    def verify(self, r: Any, token: str) -> Principal | None:
        """The principal of a valid, unexpired token (sync connection), or None; records its use."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        key = digest(token)
        tokens, stamps = self.keys_of(r, key)
        with r.pipeline(transaction=False) as pipe:  # one round trip: the token and its last-use stamp
            raw, used = pipe.hget(tokens, key).hget(stamps, key).execute()
        principal, now_ms = self._check(raw, used)
        if principal is not None and now_ms is not None:
            r.hset(stamps, key, now_ms)
        return principal

    async def averify(self, r: Any, token: str) -> Principal | None:
        """The principal of a valid, unexpired token (asyncio connection), or None; records its use."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        key = digest(token)
        tokens, stamps = self.keys_of(r, key)
        async with r.pipeline(transaction=False) as pipe:  # one round trip: the token and its last-use stamp
            raw, used = await pipe.hget(tokens, key).hget(stamps, key).execute()
        principal, now_ms = self._check(raw, used)
        if principal is not None and now_ms is not None:
            await r.hset(stamps, key, now_ms)
        return principal

    def still_valid(self, raw: bytes | str | None) -> bool:
        """Whether a stored token (its JSON, as HGET returns it) is present and unexpired now."""
        return raw is not None and not _decode(raw).expired(self.clock_ms())

    def _check(self, raw: bytes | None, used: bytes | None) -> tuple[Principal | None, int | None]:
        """The principal unless missing or expired, and the time to stamp as its last use when the stamp is
        stale (None: leave it)."""
        if not raw:
            return None, None
        principal, now_ms = _decode(raw), self.clock_ms()
        if principal.expired(now_ms):
            return None, None
        return principal, now_ms if used is None or now_ms - int(used) >= USED_EVERY_MS else None

    def list(self, r: Any) -> list[Principal]:
        """Every token's principal, oldest first; never the secrets (Redis does not have them)."""
        return sorted((_decode(v) for key, _ in self.all_keys(r) for v in r.hvals(key)), key=lambda p: p.created_at)

    def last_used(self, r: Any) -> dict[str, int]:
        """Token id (as in ``list``) -> when it was last used (epoch ms, up to ``USED_EVERY_MS`` early)."""
        return {d.decode()[:12]: int(ms) for _, key in self.all_keys(r) for d, ms in r.hgetall(key).items()}

    def revoke(self, r: Any, token_or_id: str) -> bool:
        """Revoke by the secret itself or by the id shown in ``list``; whether one was revoked."""
        if token_or_id.startswith(TOKEN_PREFIX):
            found = digest(token_or_id)
        else:
            known = [d for key, _ in self.all_keys(r) for d in r.hkeys(key)] if len(token_or_id) >= 6 else []
            matches = [d for d in known if d.decode().startswith(token_or_id)]
            if len(matches) != 1:
                return False
            found = matches[0].decode()
        # Whether it existed is read before the delete, not from HDEL's count: redis-py sends HDEL again when
        # its reply is lost, and that second one finds nothing although the revoke worked.
        tokens, stamps = self.keys_of(r, found)
        if token_or_id.startswith(TOKEN_PREFIX) and not r.hexists(tokens, found):
            return False
        r.hdel(stamps, found)
        r.hdel(tokens, found)
        return True
