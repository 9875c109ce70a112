"""The WebSocket protocol ``zsched serve`` runs, on a real socket: once the handshake is done it keeps neither the
request nor the response, nor an instance dict; uvicorn's keepalive pings still go out, and close codes and
messages pass as before."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.helpers import tick
from tests.integration.wsutil import GatewayServer, closed_with, open_socket, receive, until_ready, user_token, wait_for
from zsched import Scheduler
from zsched.web.gateway.protocol import LeanWebSocketProtocol, _Flag, _Inbox
from zsched.web.gateway.socket import parse_stream_id


@pytest.fixture
def gw(redis_url: str, prefix: str) -> Iterator[GatewayServer]:
    server = GatewayServer(redis_url, prefix)
    server.server.config.ws_ping_interval = 0.2  # read as each connection opens
    yield server.start()
    server.stop()


def _the_socket(gw: GatewayServer) -> LeanWebSocketProtocol:
    found = [p for p in gw.server.server_state.connections if isinstance(p, LeanWebSocketProtocol)]
    assert len(found) == 1, f"expected one socket on the lean protocol; got {gw.server.server_state.connections}"
    return found[0]


def test_an_open_socket_keeps_no_handshake_objects(gw: GatewayServer, redis_url: str, prefix: str) -> None:
    with open_socket(gw.url(user_token(redis_url, prefix, "alice")), additional_headers={"X-Big": "x" * 2000}) as ws:
        assert until_ready(ws) == []
        protocol = _the_socket(gw)
        assert not hasattr(protocol, "request") and not hasattr(protocol, "response")
        assert vars(protocol) == {}, "an attribute uvicorn added lands in a per-socket dict: add it to __slots__"
        assert isinstance(protocol.queue, _Inbox) and isinstance(protocol.writable, _Flag)
        assert protocol.writable.is_set()
        ws.send('{"type":"ping"}')
        assert receive(ws) == {"type": "pong"}
        # uvicorn's keepalive still pings (every 0.2 s here), and the client's pong is matched to it
        wait_for(lambda: protocol.last_ping_rtt > 0, "a keepalive ping answered")


def test_close_codes_pass_as_before(gw: GatewayServer, redis_url: str, prefix: str) -> None:
    with open_socket(gw.url(user_token(redis_url, prefix, "alice"))) as ws:
        until_ready(ws)
        ws.send(b"binary")
        assert closed_with(ws) == (1003, "binary frames are not supported; send JSON text frames")
    with open_socket(gw.url("zs_not-a-real-token")) as ws:
        assert closed_with(ws)[0] == 1008
    wait_for(lambda: gw.gateway.connections == 0, "the gateway to forget both sockets")
    time.sleep(0.1)
    assert not [p for p in gw.server.server_state.connections if isinstance(p, LeanWebSocketProtocol)]


def test_live_deliveries_are_written_directly_in_order(
    gw: GatewayServer, redis_url: str, prefix: str, zs: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[str] = []
    original = LeanWebSocketProtocol.send_text_now

    def counted(self: LeanWebSocketProtocol, text: str) -> bool:
        done = original(self, text)
        if done:
            written.append(text)
        return done

    monkeypatch.setattr(LeanWebSocketProtocol, "send_text_now", counted)
    with open_socket(gw.url(user_token(redis_url, prefix, "alice"))) as ws:
        assert until_ready(ws) == []
        ids = [zs.schedule(["alice"], f"n{i}", "m", delay=0).notification_ids[0] for i in range(30)]
        tick(zs)
        got = [receive(ws) for _ in ids]
    assert sorted(m["id"] for m in got) == ids
    positions = [parse_stream_id(m["stream_id"]) for m in got]
    assert positions == sorted(positions), "received in the order they entered the inbox"
    assert sum('"type":"notification"' in text for text in written) == len(ids), "each went the direct way"
