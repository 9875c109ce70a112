"""The gateway on real sockets and a real server: auth, live delivery, acks, fan-out, subscriptions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.helpers import tick
from tests.integration.wsutil import GatewayServer, close_code, open_socket, receive, until_ready, wait_for
from zsched import Scheduler
from zsched.web.auth import TokenStore


@pytest.fixture
def gw(redis_url: str, prefix: str) -> Iterator[GatewayServer]:
    server = GatewayServer(redis_url, prefix, allowed_origins=["https://app.example"]).start()
    yield server
    server.stop()


@pytest.fixture
def tokens(redis_url: str, prefix: str) -> Iterator[dict[str, str]]:
    r = redis.Redis.from_url(redis_url)
    store = TokenStore(prefix)
    yield {user: store.create(r, user)[0] for user in ("alice", "bob")}
    r.close()


def test_bad_token_closes_1008_before_anything_is_sent(gw: GatewayServer, tokens: dict[str, str]) -> None:
    for url, headers in (
        (gw.url("zs_not-a-real-token"), {}),
        (gw.url(), {}),
        (gw.url(), {"Authorization": "Bearer zs_wrong"}),
        (gw.url(tokens["alice"]), {"Origin": "https://evil.example"}),
    ):
        with open_socket(url, additional_headers=headers) as ws:
            assert close_code(ws) == 1008
    assert gw.gateway.connections == 0 and gw.gateway.subscriptions == 0


def test_origin_allow_list_and_header_token(gw: GatewayServer, tokens: dict[str, str]) -> None:
    headers = {"Origin": "https://app.example", "Authorization": f"Bearer {tokens['alice']}"}
    with open_socket(gw.url(), additional_headers=headers) as ws:
        assert until_ready(ws) == []
        ws.send('{"type":"ping"}')
        assert receive(ws) == {"type": "pong"}


def test_live_fan_out_ack_and_subscriptions_follow_sockets(
    gw: GatewayServer, tokens: dict[str, str], zs: Scheduler, redis_url: str
) -> None:
    r = redis.Redis.from_url(redis_url)
    channel = zs.core.keys.for_recipient("alice").user_channel("alice")
    with (
        open_socket(gw.url(tokens["alice"])) as tab1,
        open_socket(gw.url(tokens["alice"])) as tab2,
        open_socket(gw.url(tokens["bob"])) as other,
    ):
        for ws in (tab1, tab2, other):
            assert until_ready(ws) == []
        # one pub/sub connection for the whole gateway: alice's two tabs share one subscription
        assert r.pubsub_numsub(channel)[0][1] == 1 and gw.gateway.subscriptions == 2
        (nid,) = zs.schedule(
            ["alice"], "Stand-up", "in 5", delay=0, priority="high", data={"room": "B2"}
        ).notification_ids
        tick(zs)
        first, second = receive(tab1), receive(tab2)
        assert first == second
        assert first["type"] == "notification" and first["id"] == nid and first["stream_id"]
        assert (first["title"], first["message"], first["priority"], first["notification_type"]) == (
            "Stand-up",
            "in 5",
            "high",
            "system",
        )
        assert first["data"] == {"room": "B2"} and first["scheduled_at"] and first["sent_at"]
        tab1.send(f'{{"type":"ack","id":{nid}}}')
        acked = receive(tab1)
        assert acked["type"] == "acked" and acked["id"] == nid
        assert zs.status(nid).delivered_at is not None
        other.send(f'{{"type":"ack","id":{nid}}}')  # not bob's to ack
        assert receive(other)["type"] == "error"
        other.send("not json")
        assert "expected a JSON object" in receive(other)["error"]
    wait_for(lambda: r.pubsub_numsub(channel)[0][1] == 0, "the last socket's unsubscribe")
    wait_for(lambda: gw.gateway.connections == 0 and gw.gateway.subscriptions == 0, "cleanup")
    r.close()
