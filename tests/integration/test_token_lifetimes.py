"""Token lifetimes: an expired token is refused on every use (HTTP and WebSocket), ``token create
--expires-in`` sets the expiry, and ``token list`` shows it with the last use, which is stamped at most once a
minute per token so that a verification stays one round trip."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import redis

from tests.conftest import ManualClock
from tests.integration.http_support import TestClient, client, settings
from tests.integration.wsutil import GatewayServer, close_code, open_socket, until_ready
from zsched.web.auth import USED_EVERY_MS, TokenStore

__all__ = ["client", "settings"]

HOUR_MS = 3_600_000
ZSCHED = [sys.executable, "-m", "zsched.cli"]


def test_an_expired_token_is_refused_over_http_and_websocket(client: TestClient, redis_url: str, prefix: str) -> None:
    r = redis.Redis.from_url(redis_url)
    now_ms = int(time.time() * 1000)
    expired, _ = TokenStore(prefix, clock_ms=lambda: now_ms - 2 * HOUR_MS).create(r, "alice", expires_in_ms=HOUR_MS)
    valid, p = TokenStore(prefix).create(r, "alice", expires_in_ms=HOUR_MS)
    assert p.expires_at is not None and now_ms + HOUR_MS <= p.expires_at <= now_ms + HOUR_MS + 60_000
    assert client.get("/api/notifications/", headers={"Authorization": f"Token {valid}"}).status_code == 200
    assert client.get("/api/notifications/", headers={"Authorization": f"Token {expired}"}).status_code == 401
    gw = GatewayServer(redis_url, prefix, heartbeat_s=60).start()
    try:
        with open_socket(gw.url(valid)) as ws:
            assert until_ready(ws) == []
        with open_socket(gw.url(expired)) as ws:
            assert close_code(ws) == 1008
    finally:
        gw.stop()
        r.close()


def test_a_token_expires_at_its_expiry_exactly(redis_url: str, prefix: str) -> None:
    r = redis.Redis.from_url(redis_url)
    clock = ManualClock()
    store = TokenStore(prefix, clock_ms=clock)
    token, p = store.create(r, "alice", expires_in_ms=1000)
    assert p.expires_at == clock.ms + 1000
    clock.advance(999)
    assert store.verify(r, token) == p
    clock.advance(1)
    assert store.verify(r, token) is None
    r.close()


class Counting:
    """A redis connection that records which of its methods a caller reaches for (a pipeline is one)."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.r, name)


def test_last_use_is_stamped_at_most_once_a_minute(redis_url: str, prefix: str) -> None:
    r = redis.Redis.from_url(redis_url)
    clock = ManualClock()
    store = TokenStore(prefix, clock_ms=clock)
    token, p = store.create(r, "alice")
    assert store.last_used(r) == {}
    counted = Counting(r)
    assert store.verify(counted, token) == p  # never used: stamped
    assert counted.calls == ["pipeline", "hset"] and store.last_used(r) == {p.id: clock.ms}
    first = clock.ms
    for _ in range(5):
        clock.advance(USED_EVERY_MS // 6)
        counted.calls.clear()
        assert store.verify(counted, token) == p
        assert counted.calls == ["pipeline"]  # the common case: one round trip, nothing written
    assert store.last_used(r) == {p.id: first}
    clock.advance(USED_EVERY_MS)
    assert store.verify(r, token) == p and store.last_used(r) == {p.id: clock.ms}
    assert store.revoke(r, p.id) and store.last_used(r) == {}  # revoking forgets the stamp too
    r.close()


def _cli(*args: str) -> str:
    done = subprocess.run(
        [*ZSCHED, *args], capture_output=True, text=True, timeout=60, env={**os.environ, "ZSCHED_REDIS_URL": ""}
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_token_create_expires_in_and_list_shows_expiry_and_last_use(redis_url: str, prefix: str) -> None:
    target = ["--redis-url", redis_url, "--prefix", prefix]
    created = _cli("token", "create", *target, "--user", "alice", "--expires-in", "30d")
    token = created.strip().splitlines()[-1]
    assert "expires: " in created and "expires: never" not in created
    _cli("token", "create", *target, "--user", "bob")
    listing = _cli("token", "list", *target)
    alice, bob = sorted(listing.strip().splitlines(), key=lambda line: "user=bob" in line)
    assert "last_used=never" in alice and "expires=never" in bob and "expires=never" not in alice
    r = redis.Redis.from_url(redis_url)
    p = TokenStore(prefix).verify(r, token)
    assert p is not None and p.expires_at is not None
    assert 29.9 * 86_400_000 < p.expires_at - p.created_at <= 30 * 86_400_000
    r.close()
    assert "last_used=never" not in next(
        line for line in _cli("token", "list", *target).splitlines() if "user=alice" in line
    )
    bad = subprocess.run(
        [*ZSCHED, "token", "create", *target, "--user", "carol", "--expires-in", "soon"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ZSCHED_REDIS_URL": ""},
    )
    assert bad.returncode == 2 and "--expires-in" in bad.stderr and "not a duration" in bad.stderr
