"""Token store on a real server: only digests are stored, tokens verify, revoke works by id or secret."""

from __future__ import annotations

import pytest
import redis

from zsched.web.auth import SCOPE_SCHEDULE_ANY, TokenStore, digest


def test_create_verify_list_revoke(redis_url: str, prefix: str) -> None:
    r = redis.Redis.from_url(redis_url)
    store = TokenStore(prefix)
    token, principal = store.create(r, "alice", scopes=(SCOPE_SCHEDULE_ANY,))
    other, _ = store.create(r, "ops", admin=True)
    assert store.verify(r, token) == principal and principal.can_schedule_for_others()
    assert store.verify(r, token + "x") is None and store.verify(r, "Token nonsense") is None
    stored = r.hgetall(store.key)
    assert token.encode() not in b"".join(k + v for k, v in stored.items())
    assert digest(token).encode() in stored
    assert [p.user for p in store.list(r)] == ["alice", "ops"]
    assert store.revoke(r, principal.id)
    assert store.verify(r, token) is None
    assert store.revoke(r, other) and store.list(r) == []
    r.close()


def test_rejects_bad_user(redis_url: str, prefix: str) -> None:
    with pytest.raises(ValueError, match="printable characters"):
        TokenStore(prefix).new("two words")
