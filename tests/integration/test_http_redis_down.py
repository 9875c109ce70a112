"""Redis stopped mid-test: /readyz fails, API calls answer 503, nothing is half-written, service resumes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import zsched.embedded
from tests.integration.http_support import TestClient, Tokens, schedule_body
from zsched.app import create_app
from zsched.embedded import EmbeddedServer
from zsched.settings import Settings

SCHEDULE = "/api/notifications/schedule/"


def test_redis_stopped_then_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "valkey"
    server = EmbeddedServer(data).start()
    port = server.port
    prefix = f"zt-{uuid.uuid4().hex[:10]}"
    tokens = Tokens(server.url, prefix)
    try:
        me = tokens.headers("alice")
        settings = Settings(redis_url=server.url, prefix=prefix, rate_per_s=1000.0, rate_burst=1000)
        with TestClient(create_app(settings, run_worker=True)) as c:
            (kept,) = c.post(SCHEDULE, headers=me, json=schedule_body(["alice"])).json()["notification_ids"]
            server.stop()  # SIGTERM: the AOF is flushed, so what was written survives

            for method, path in (("POST", SCHEDULE), ("GET", f"/api/notifications/{kept}/schedule_status/"),
                                 ("DELETE", f"/api/notifications/{kept}/cancel_scheduled/"),
                                 ("GET", "/api/notifications/")):
                r = c.request(method, path, headers=me, json=schedule_body(["alice"]))
                assert r.status_code == 503, (method, path, r.text)
                assert r.json()["error"] == "unavailable" and "Redis is unavailable" in r.json()["detail"]
                assert r.headers["Retry-After"] == "1"
            ready = c.get("/readyz")
            assert ready.status_code == 503 and "Redis" in ready.json()["detail"]
            assert c.get("/healthz").status_code == 200
            assert "zsched_redis_up 0" in c.get("/metrics").text

            monkeypatch.setattr(zsched.embedded, "_free_port", lambda: port)  # come back where clients look
            server = EmbeddedServer(data).start()
            assert server.port == port
            assert c.get("/readyz").status_code == 200
            status = c.get(f"/api/notifications/{kept}/schedule_status/", headers=me).json()
            assert status["scheduled_status"] == "pending"
            r = c.post(SCHEDULE, headers=me, json=schedule_body(["alice"]))
            assert r.status_code == 201
            listed = c.get("/api/notifications/", headers=me).json()["items"]
            assert [n["id"] for n in listed] == [r.json()["notification_ids"][0], kept]  # nothing half-written
            assert "zsched_redis_up 1" in c.get("/metrics").text
    finally:
        tokens.redis.close()
        server.stop()
