"""Token secrets never reach a log or `zsched token list`: a served run creates, uses, misuses and revokes
tokens over HTTP and WebSocket with every log record captured, then looks for ``zs_`` in all of it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import httpx
import pytest
import uvicorn

from tests.integration.http_support import future
from tests.integration.wsutil import ServerThread, close_code, open_socket, until_ready
from zsched.settings import Settings
from zsched.web.app import create_app

ZSCHED = [sys.executable, "-m", "zsched.cli"]


def _cli(*args: str) -> str:
    done = subprocess.run(
        [*ZSCHED, *args], capture_output=True, text=True, timeout=60, env={**os.environ, "ZSCHED_REDIS_URL": ""}
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


class InfoServer(ServerThread):
    """The app under uvicorn at log level info, as `zsched serve` runs it (request lines logged)."""

    def __init__(self, app: object) -> None:
        super().__init__(app)
        self.server.config = uvicorn.Config(app, lifespan="on", log_level="info")


CLIENT_SIDE = ("httpx", "httpcore", "websockets.client")  # the test's own clients log what they send


def test_no_secret_in_logs_or_token_list(redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    target = ["--redis-url", redis_url, "--prefix", prefix]
    created = [
        _cli("token", "create", *target, "--user", user, *extra).strip().splitlines()[-1]
        for user, extra in (("alice", ()), ("billing", ("--scope", "schedule:any")), ("ops", ("--admin",)))
    ]
    alice, service, admin = created
    assert all(t.startswith("zs_") for t in created)
    caplog.set_level(logging.DEBUG)
    settings = Settings.of(redis_url=redis_url, prefix=prefix, rate_per_s=1000.0, rate_burst=1000)
    server = InfoServer(create_app(settings, run_worker=True))
    for name in ("uvicorn.error", "uvicorn.access"):  # after uvicorn configured them: they do not propagate
        logging.getLogger(name).addHandler(caplog.handler)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=base, timeout=10) as http:
            body = {"recipients": ["alice"], "title": "t", "message": "m", "scheduled_at": future()}
            assert (
                http.post(
                    "/api/notifications/schedule/", json=body, headers={"Authorization": f"Token {service}"}
                ).status_code
                == 201
            )
            assert (
                http.get(f"/api/notifications/?token={alice}", headers={"Authorization": f"Bearer {alice}"}).status_code
                == 200
            )
            assert http.get("/api/stats", headers={"Authorization": f"Token {admin}"}).status_code == 200
            assert http.get("/api/stats", headers={"Authorization": f"Token {alice}x"}).status_code == 401
        ws_url = f"ws://127.0.0.1:{server.port}/ws"
        with open_socket(f"{ws_url}?token={alice}") as ws:
            assert until_ready(ws) == []
        with open_socket(f"{ws_url}?token={alice}x") as ws:
            assert close_code(ws) == 1008
        with open_socket(ws_url, additional_headers={"Authorization": f"Bearer {admin}"}) as ws:
            assert until_ready(ws) == []
    finally:
        server.stop()
        for name in ("uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).removeHandler(caplog.handler)
    listing = _cli("token", "list", *target)
    assert "alice" in listing and "billing" in listing and "ops" in listing
    _cli("token", "revoke", *target, alice)
    listing_after = _cli("token", "list", *target)
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records if not r.name.startswith(CLIENT_SIDE))
    assert "WebSocket /ws" in logged and "GET /api/notifications/" in logged  # the logs were captured
    for token in created:
        assert token not in logged and token[3:] not in logged
        assert token not in listing and token not in listing_after
    assert "zs_" not in listing + listing_after
    assert "zs_[redacted]" in logged  # uvicorn logs request lines; the secret in ?token= is masked
