"""The single server's pub/sub connection: a client of its own (RESP2, no read timeout), so an idle channel
waits past the shared connection's ``socket_timeout`` without counting as a lost connection; and where that
client cannot be made, the shared pool's connection read with a timeout, as before."""

from __future__ import annotations

import time

import pytest

from tests.helpers import tick
from tests.integration.wsutil import GatewayServer, open_socket, receive, until_ready, user_token
from zsched import Scheduler
from zsched.web.gateway import subscriptions


def _delivered_after_idle(gw: GatewayServer, zs: Scheduler, redis_url: str, prefix: str, idle_s: float) -> None:
    with open_socket(gw.url(user_token(redis_url, prefix, "alice"))) as ws:
        assert until_ready(ws) == []
        time.sleep(idle_s)  # longer than the shared client's socket_timeout: the pub/sub read must not mind
        (nid,) = zs.schedule(["alice"], "Hi", "after a quiet spell", delay=0).notification_ids
        tick(zs)
        got = receive(ws)
        assert got["type"] == "notification" and got["id"] == nid


def test_the_reader_has_its_own_resp2_connection_without_a_read_timeout(
    redis_url: str, prefix: str, zs: Scheduler
) -> None:
    sep = "&" if "?" in redis_url else "?"
    gw = GatewayServer(f"{redis_url}{sep}socket_timeout=0.3", prefix).start()
    try:
        assert gw.gateway.redis.connection_pool.connection_kwargs["socket_timeout"] == 0.3
        link = gw.gateway._subscriptions._single
        assert link is not None and link.client is not None and link.read_timeout_s is None
        connection = link.pubsub.connection
        assert connection.protocol in (2, "2") and connection.socket_timeout is None
        _delivered_after_idle(gw, zs, redis_url, prefix, idle_s=1.0)
        assert not gw.gateway._catching_up  # no reconnect was taken for a lost connection
    finally:
        gw.stop()


def test_without_a_client_of_its_own_the_reader_uses_the_shared_pool(
    redis_url: str, prefix: str, zs: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subscriptions, "_reader_client", lambda connection: None)
    gw = GatewayServer(redis_url, prefix).start()
    try:
        link = gw.gateway._subscriptions._single
        assert link is not None and link.client is None and link.read_timeout_s == 1.0
        _delivered_after_idle(gw, zs, redis_url, prefix, idle_s=1.2)
    finally:
        gw.stop()
