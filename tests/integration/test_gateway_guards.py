"""What a client may do to the gateway: frame size, message rate, ack size, binary frames, connects per
token, the token schemes, revoked tokens, and a backlog the client does not read."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
import redis

from tests.helpers import tick
from tests.integration.wsutil import GatewayServer, closed_with, open_socket, receive, until_ready, user_token, wait_for
from zsched import Scheduler
from zsched.web.auth import TokenStore


@pytest.fixture
def token(redis_url: str, prefix: str) -> str:
    return user_token(redis_url, prefix, "erin")


@pytest.fixture
def gw(redis_url: str, prefix: str) -> Iterator[GatewayServer]:
    server = GatewayServer(redis_url, prefix, heartbeat_s=60, max_frame_bytes=1024, max_ack_ids=50).start()
    yield server
    server.stop()


def test_a_frame_over_max_frame_bytes_closes_1009(gw: GatewayServer, token: str) -> None:
    with open_socket(gw.url(token)) as ws:
        assert until_ready(ws) == []
        ws.send(json.dumps({"type": "ack", "ids": [1] * 400}))  # 1,2xx bytes: over the 1,024 allowed
        code, reason = closed_with(ws)
        assert code == 1009 and "too big" in reason


def test_an_ack_over_max_ack_ids_closes_1008(gw: GatewayServer, token: str) -> None:
    with open_socket(gw.url(token)) as ws:
        assert until_ready(ws) == []
        ws.send(json.dumps({"type": "ack", "ids": list(range(1, 52))}))
        code, reason = closed_with(ws)
        assert code == 1008 and "at most 50 ids" in reason


def test_a_binary_frame_closes_1003(gw: GatewayServer, token: str) -> None:
    with open_socket(gw.url(token)) as ws:
        assert until_ready(ws) == []
        ws.send(b'{"type":"ping"}')
        code, reason = closed_with(ws)
        assert code == 1003 and "binary" in reason


def test_too_many_messages_close_1008(redis_url: str, prefix: str, token: str) -> None:
    server = GatewayServer(redis_url, prefix, heartbeat_s=60, messages_per_s=0.01, messages_burst=5).start()
    try:
        with open_socket(server.url(token)) as ws:
            assert until_ready(ws) == []
            for _ in range(5):  # the burst is answered
                ws.send('{"type":"ping"}')
                assert receive(ws) == {"type": "pong"}
            ws.send('{"type":"ping"}')
            code, reason = closed_with(ws)
            assert code == 1008 and "too many messages" in reason
    finally:
        server.stop()


def test_connects_per_token_are_limited_1013(redis_url: str, prefix: str, token: str) -> None:
    server = GatewayServer(redis_url, prefix, heartbeat_s=60, connects_per_s=0.01, connects_burst=2).start()
    try:
        for _ in range(2):
            with open_socket(server.url(token)) as ws:
                assert until_ready(ws) == []
        with open_socket(server.url(token)) as ws:
            code, reason = closed_with(ws)
            assert code == 1013 and "too many connects" in reason
        with open_socket(server.url(user_token(redis_url, prefix, "erin"))) as ws:  # another token: its own budget
            assert until_ready(ws) == []
    finally:
        server.stop()


def test_token_scheme_is_accepted_as_on_the_http_api(gw: GatewayServer, token: str) -> None:
    for scheme in ("Token", "Bearer", "token"):
        with open_socket(gw.url(), additional_headers={"Authorization": f"{scheme} {token}"}) as ws:
            assert until_ready(ws) == []
    with open_socket(gw.url(), additional_headers={"Authorization": f"Basic {token}"}) as ws:
        code, reason = closed_with(ws)
        assert code == 1008 and "missing token" in reason


def test_revoking_a_token_closes_its_open_sockets_1008(
    gw: GatewayServer, token: str, redis_url: str, prefix: str
) -> None:
    other = user_token(redis_url, prefix, "erin")
    with open_socket(gw.url(token)) as revoked, open_socket(gw.url(other)) as kept:
        assert until_ready(revoked) == [] and until_ready(kept) == []
        r = redis.Redis.from_url(redis_url)
        try:
            assert TokenStore(prefix).revoke(r, token)
        finally:
            r.close()
        code, reason = closed_with(revoked, timeout_s=5)
        assert code == 1008 and "revoked" in reason
        kept.send('{"type":"ping"}')
        assert receive(kept) == {"type": "pong"}


def test_an_open_socket_is_closed_1008_when_its_token_expires(redis_url: str, prefix: str) -> None:
    r = redis.Redis.from_url(redis_url)
    try:
        short, _ = TokenStore(prefix).create(r, "frank", expires_in_ms=1500)
    finally:
        r.close()
    gw = GatewayServer(redis_url, prefix, heartbeat_s=60).start()
    try:
        with open_socket(gw.url(short)) as ws:
            assert until_ready(ws) == []  # admitted while the token was valid
            code, reason = closed_with(ws, timeout_s=5)
            assert code == 1008 and "expired" in reason
    finally:
        gw.stop()


def test_a_backlog_the_client_does_not_read_is_bounded_1013(
    redis_url: str, prefix: str, token: str, zs: Scheduler
) -> None:
    blob = "x" * 15_000
    for i in range(100):  # ~1.5 MB waiting in the inbox
        zs.schedule(["erin"], f"bulk {i}", "...", delay=0, data={"blob": blob})
    tick(zs, batch=100)
    server = GatewayServer(redis_url, prefix, heartbeat_s=60, send_timeout_s=0.5)
    # Small kernel buffers at both ends (accepted sockets inherit the listener's) and no compression (the
    # blobs would shrink to nothing), so the replay feels the client that does not read.
    server.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    server.start()
    try:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", server.port))
        with open_socket(server.url(token, since="0"), sock=raw, max_queue=1, compression=None) as ws:
            wait_for(lambda: server.gateway.connections == 0, "the gateway to give up on the backlog", 30)
            code, reason = closed_with(ws)
            assert code == 1013 and "not read" in reason
    finally:
        server.stop()
