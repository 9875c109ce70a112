"""Redis stopped mid-test: /readyz fails, API calls answer 503, nothing is half-written, service resumes."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import redis

from tests.integration.http_support import TestClient, Tokens, future, schedule_body
from zsched.embedded import EmbeddedServer
from zsched.settings import Settings
from zsched.web.app import connect, create_app

SCHEDULE = "/api/notifications/schedule/"


def _keys(url: str, prefix: str) -> dict[bytes, bytes]:
    """Every data key of the prefix with its type (tokens and rate buckets left out)."""
    r = redis.Redis.from_url(url)
    try:
        return {k: r.type(k) for k in r.scan_iter(match=f"{prefix}:*") if b"{rate}" not in k}
    finally:
        r.close()


def test_redis_stopped_then_back(tmp_path: Path) -> None:
    data = tmp_path / "valkey"
    server = EmbeddedServer(data).start()
    port = server.port
    prefix = f"zt-{uuid.uuid4().hex[:10]}"
    tokens = Tokens(server.url, prefix)
    try:
        me = tokens.headers("alice")
        settings = Settings.of(redis_url=server.url, prefix=prefix, rate_per_s=1000.0, rate_burst=1000)
        with TestClient(create_app(settings, run_worker=True)) as c:
            (kept,) = c.post(SCHEDULE, headers=me, json=schedule_body(["alice"])).json()["notification_ids"]
            before = _keys(server.url, prefix)
            server.stop()  # SIGTERM: the AOF is flushed, so what was written survives

            for method, path in (
                ("POST", SCHEDULE),
                ("GET", f"/api/notifications/{kept}/schedule_status/"),
                ("DELETE", f"/api/notifications/{kept}/cancel_scheduled/"),
                ("GET", "/api/notifications/"),
                ("PATCH", f"/api/notifications/{kept}/"),
                ("GET", f"/api/notifications/{kept}/"),
            ):
                body = {"scheduled_at": future(60)} if method == "PATCH" else schedule_body(["alice"])
                r = c.request(method, path, headers=me, json=body)
                assert r.status_code == 503, (method, path, r.text)
                assert r.json()["error"] == "unavailable" and "Redis is unavailable" in r.json()["detail"]
                assert r.headers["Retry-After"] == "1"
            ready = c.get("/readyz")
            assert ready.status_code == 503 and "Redis" in ready.json()["detail"]
            assert c.get("/healthz").status_code == 200
            assert "zsched_redis_up 0" in c.get("/metrics").text
            bad = c.get("/api/notifications/", headers={"Authorization": "Token zs_wrong"})
            assert bad.status_code == 503  # an outage is not a failed authentication

            server = EmbeddedServer(data, port=port).start()  # back where clients look, same data
            assert server.port == port
            assert c.get("/readyz").status_code == 200
            assert _keys(server.url, prefix) == before  # the refused calls wrote nothing
            status = c.get(f"/api/notifications/{kept}/schedule_status/", headers=me).json()
            assert status["scheduled_status"] == "pending"
            r = c.post(SCHEDULE, headers=me, json=schedule_body(["alice"]))
            assert r.status_code == 201
            listed = c.get("/api/notifications/", headers=me).json()["items"]
            assert [n["id"] for n in listed] == [r.json()["notification_ids"][0], kept]  # nothing half-written
            assert "zsched_redis_up 1" in c.get("/metrics").text
            (soon,) = c.post(SCHEDULE, headers=me, json=schedule_body(["alice"], scheduled_at=future(1))).json()[
                "notification_ids"
            ]
            deadline = time.monotonic() + 30  # the worker reconnected by itself and delivers
            while (got := c.get(f"/api/notifications/{soon}/", headers=me).json()).get("scheduled_status") != "sent":
                assert "error" not in got, got
                assert time.monotonic() < deadline, "the worker did not resume after Redis came back"
                time.sleep(0.05)
    finally:
        tokens.redis.close()
        server.stop()


async def test_connections_pooled_before_a_restart_reconnect_by_themselves(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "pool").start()
    try:
        zs = connect(Settings.of(redis_url=server.url))
        # Five at once, so the pool holds five connections that the restart below leaves stale.
        await asyncio.gather(*(zs.redis.blpop(["zt-nothing"], timeout=0.05) for _ in range(5)))
        port = server.port
        server.stop()
        server = EmbeddedServer(tmp_path / "pool", port=port).start()
        assert await asyncio.gather(*(zs.redis.ping() for _ in range(5))) == [True] * 5
        await zs.close()
    finally:
        server.stop()
