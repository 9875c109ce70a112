"""Resume from the inbox stream: missed messages after ?since=, offline recipients, no gap or duplicate."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.helpers import tick
from tests.integration.wsutil import GatewayServer, close_code, open_socket, receive, until_ready, user_token
from zsched import Scheduler


@pytest.fixture
def gw(redis_url: str, prefix: str) -> Iterator[GatewayServer]:
    server = GatewayServer(redis_url, prefix, heartbeat_s=60).start()
    yield server
    server.stop()


@pytest.fixture
def token(redis_url: str, prefix: str) -> str:
    return user_token(redis_url, prefix, "carol")


def _send(zs: Scheduler, title: str) -> int:
    (nid,) = zs.schedule(["carol"], title, "...", delay=0).notification_ids
    tick(zs)
    return nid


def test_resume_after_a_dropped_connection(gw: GatewayServer, token: str, zs: Scheduler) -> None:
    with open_socket(gw.url(token)) as ws:
        assert until_ready(ws) == []
        first = _send(zs, "one")
        got = receive(ws)
        assert got["id"] == first
        last_seen = got["stream_id"]
    missed = [_send(zs, "two"), _send(zs, "three")]
    with open_socket(gw.url(token, since=last_seen)) as ws:
        assert [m["id"] for m in until_ready(ws)] == missed
        live = _send(zs, "four")
        assert receive(ws)["id"] == live
    with open_socket(gw.url(token, since="0")) as ws:  # 0: the whole inbox
        assert [m["id"] for m in until_ready(ws)] == [first, *missed, live]


def test_offline_recipient_gets_unacked_on_next_connect(gw: GatewayServer, token: str, zs: Scheduler) -> None:
    sent = [_send(zs, "while away 1"), _send(zs, "while away 2")]
    with open_socket(gw.url(token)) as ws:
        backlog = until_ready(ws)
        assert [m["id"] for m in backlog] == sent
        ws.send(f'{{"type":"ack","ids":[{sent[0]}]}}')
        assert receive(ws)["type"] == "acked"
    with open_socket(gw.url(token)) as ws:  # no since: only what was never acked
        assert [m["id"] for m in until_ready(ws)] == [sent[1]]


def test_no_gap_and_no_duplicate_at_the_seam(gw: GatewayServer, token: str, zs: Scheduler) -> None:
    """Deliveries keep flowing while clients reconnect with ?since=; every id arrives exactly once."""
    total = 60
    ids: list[int] = []

    def produce() -> None:
        for i in range(total):
            ids.append(_send(zs, f"n{i}"))

    received: list[int] = []
    since = None
    producer = threading.Thread(target=produce)
    producer.start()
    try:
        for _ in range(200):  # reconnect after every few messages until the producer is done
            with open_socket(gw.url(token, since=since or "0")) as ws:
                for m in until_ready(ws):
                    received.append(m["id"])
                    since = m["stream_id"]
                for _ in range(3):
                    if len(received) >= total:
                        break
                    m = receive(ws, timeout_s=15)
                    received.append(m["id"])
                    since = m["stream_id"]
            if len(received) >= total:
                break
    finally:
        producer.join(60)
    assert received == ids


def test_gateway_restart_loses_nothing(redis_url: str, prefix: str, token: str, zs: Scheduler) -> None:
    """The gateway process stops (its socket closes), notifications are delivered while it is down, a new
    gateway starts: a client reconnecting with ``since`` gets every one of them, once, then live ones."""
    first = GatewayServer(redis_url, prefix, heartbeat_s=60).start()
    try:
        with open_socket(first.url(token)) as ws:
            assert until_ready(ws) == []
            before = _send(zs, "before")
            got = receive(ws)
            assert got["id"] == before
            since = got["stream_id"]
            first.stop()
            close_code(ws, timeout_s=15)  # the server going away closes the socket
    finally:
        first.stop()  # bounded and idempotent, for a failure above
    while_down = [_send(zs, f"while down {i}") for i in range(5)]
    second = GatewayServer(redis_url, prefix, heartbeat_s=60).start()
    try:
        with open_socket(second.url(token, since=since)) as ws:
            assert [m["id"] for m in until_ready(ws)] == while_down
            live = _send(zs, "after")
            assert receive(ws)["id"] == live
    finally:
        second.stop()
