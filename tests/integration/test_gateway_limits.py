"""The gateway under stress: a client that stops reading, silent peers, two gateways on one Redis."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.helpers import tick
from tests.integration.wsutil import GatewayServer, close_code, open_socket, receive, until_ready, user_token, wait_for
from zsched import Scheduler


@pytest.fixture
def token(redis_url: str, prefix: str) -> str:
    return user_token(redis_url, prefix, "dave")


def test_slow_consumer_is_closed_1013(redis_url: str, prefix: str, token: str, zs: Scheduler) -> None:
    server = GatewayServer(redis_url, prefix, send_queue=8).start()
    try:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the server feels it soon
        raw.connect(("127.0.0.1", server.port))
        with open_socket(server.url(token), sock=raw, max_queue=1) as ws:
            assert until_ready(ws) == []
            # The server's side of the connection gets a small send buffer too, so the kernel takes a few
            # kilobytes, not megabytes: then the transport's buffer fills to its high-water mark (64 KiB), and
            # what waits beyond it fills the send queue of 8. Rounds of 100 until the gateway closes the socket.
            (protocol,) = server.server.server_state.connections
            protocol.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            rounds = 0
            while server.gateway.connections and rounds < 40:
                for i in range(100):
                    zs.schedule(["dave"], f"bulk {rounds}.{i}", "." * 200, delay=0)
                tick(zs, batch=100)
                rounds += 1
            wait_for(lambda: server.gateway.connections == 0, "the gateway to drop the slow consumer", 30)
            assert close_code(ws) == 1013  # read last, behind what the kernel and the transport took
    finally:
        server.stop()


def test_heartbeat_closes_silent_peers_and_keeps_answering_ones(redis_url: str, prefix: str, token: str) -> None:
    server = GatewayServer(redis_url, prefix, heartbeat_s=0.2, idle_timeout_s=0.8).start()
    try:
        with open_socket(server.url(token)) as silent, open_socket(server.url(token)) as alive:
            started = time.monotonic()
            while time.monotonic() - started < 2.5:  # answer every ping; stay open well past the timeout
                message = json.loads(alive.recv(timeout=5))
                if message["type"] == "ping":
                    alive.send('{"type":"pong"}')
            assert close_code(silent) == 1001
            alive.send('{"type":"ping"}')
            assert receive(alive)["type"] in ("pong", "ready")
    finally:
        server.stop()


def test_two_gateways_on_one_redis_both_deliver(redis_url: str, prefix: str, token: str, zs: Scheduler) -> None:
    first, second = GatewayServer(redis_url, prefix).start(), GatewayServer(redis_url, prefix).start()
    try:
        with open_socket(first.url(token)) as a, open_socket(second.url(token)) as b:
            assert until_ready(a) == [] and until_ready(b) == []
            (nid,) = zs.schedule(["dave"], "Both", "...", delay=0).notification_ids
            tick(zs)
            assert receive(a)["id"] == nid and receive(b)["id"] == nid
    finally:
        first.stop()
        second.stop()
