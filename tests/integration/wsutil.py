"""Test support for the gateway: serve an ASGI app with uvicorn on a free loopback port in a thread."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
import uvicorn
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from zsched.cli.run import websocket_protocol
from zsched.engine.keys import Keyspace
from zsched.web.auth import TokenStore
from zsched.web.gateway import Gateway, gateway_app


class ServerThread:
    """uvicorn serving ``app`` on 127.0.0.1 (a free port) in a daemon thread; ``stop`` is bounded."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        # The WebSocket protocol zsched serve runs, so the gateway tests cover it
        config = uvicorn.Config(app, lifespan="on", log_level="warning", ws=websocket_protocol())
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        wait_for(lambda: self.server.started, "uvicorn to start", timeout_s=15)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


class GatewayServer(ServerThread):
    """A gateway (its own pub/sub connection) served alone; ``url(token, since)`` builds the socket URL."""

    def __init__(self, redis_url: str, prefix: str, **options: Any) -> None:
        self.gateway = Gateway(redis_url, Keyspace(prefix), TokenStore(prefix), **options)
        super().__init__(gateway_app(self.gateway))

    def url(self, token: str | None = None, since: str | None = None) -> str:
        query = "&".join(f"{k}={v}" for k, v in (("token", token), ("since", since)) if v is not None)
        return f"ws://127.0.0.1:{self.port}/ws" + (f"?{query}" if query else "")


def user_token(redis_url: str, prefix: str, user: str) -> str:
    """A fresh token for ``user`` under the test's prefix (the secret, as a client would hold it)."""
    r = redis.Redis.from_url(redis_url)
    try:
        return TokenStore(prefix).create(r, user)[0]
    finally:
        r.close()


def wait_for(condition: Callable[[], object], what: str, timeout_s: float = 10.0) -> None:
    """Poll ``condition`` until it is truthy; fail naming ``what`` after a generous bound."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


def open_socket(url: str, **options: Any) -> ClientConnection:
    """A WebSocket client (the ``websockets`` package) with bounded open/close timeouts."""
    return connect(url, open_timeout=10, close_timeout=2, **options)


def receive(ws: ClientConnection, timeout_s: float = 10.0) -> dict[str, Any]:
    """The next JSON message, skipping heartbeat pings."""
    while True:
        message: dict[str, Any] = json.loads(ws.recv(timeout=timeout_s))
        if message.get("type") != "ping":
            return message


def until_ready(ws: ClientConnection) -> list[dict[str, Any]]:
    """Every notification replayed before the ``ready`` message."""
    items: list[dict[str, Any]] = []
    while (message := receive(ws))["type"] != "ready":
        items.append(message)
    return items


def close_code(ws: ClientConnection, timeout_s: float = 10.0) -> int | None:
    """Read until the server closes; the close code it sent (None: no close frame)."""
    return closed_with(ws, timeout_s)[0]


def closed_with(ws: ClientConnection, timeout_s: float = 10.0) -> tuple[int | None, str]:
    """Read until the server closes; the close code and reason it sent (None and "": no close frame)."""
    try:
        while True:
            ws.recv(timeout=timeout_s)
    except ConnectionClosed as closed:
        return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd is not None else (None, "")
