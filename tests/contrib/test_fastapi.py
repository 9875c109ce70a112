"""zsched.contrib.fastapi: zsched's app mounted in a FastAPI (the example) or Starlette host runs its lifespan,
so the mounted API answers, the worker delivers and /ws works; the host schedules through the same connection."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from websockets.sync.client import connect

from tests.contrib.conftest import load_example
from tests.integration.wsutil import ServerThread
from zsched import AsyncScheduler, Settings
from zsched.contrib.fastapi import get_scheduler, zsched_lifespan
from zsched.testing import ZschedTestServer
from zsched.web.app import create_app
from zsched.web.auth import TokenStore

with warnings.catch_warnings():  # starlette 1.x suggests httpx2 for its TestClient; httpx is what we have
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

example = load_example("fastapi/app.py", "zsched_example_fastapi")


def token(redis_url: str, prefix: str, user: str) -> str:
    r = redis.Redis.from_url(redis_url)
    try:
        return TokenStore(prefix).create(r, user)[0]
    finally:
        r.close()


def zsched_settings(redis_url: str, prefix: str) -> Settings:
    return Settings.of(redis_url=redis_url, prefix=prefix, rate_per_s=1000.0, rate_burst=1000)


def test_the_fastapi_example_schedules_delivers_over_the_mounted_ws_and_reports_sent(
    redis_url: str, prefix: str
) -> None:
    app = example.build_app(zsched_settings(redis_url, prefix), welcome_after=timedelta(0))
    bob = token(redis_url, prefix, "bob")
    server = ServerThread(app).start()  # uvicorn, lifespan on: the host's, with zsched's around it
    base = f"http://127.0.0.1:{server.port}"
    try:
        with connect(f"ws://127.0.0.1:{server.port}/zsched/ws?token={bob}", open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
            signup = httpx.post(f"{base}/signup", params={"user": "bob"}, timeout=10)
            assert signup.status_code == 200, signup.text
            welcome_id = signup.json()["welcome_id"]
            message = json.loads(ws.recv(timeout=10))  # delivered by the worker the mount started
            assert (message["type"], message["id"], message["title"]) == ("notification", welcome_id, "Welcome")

        auth = {"Authorization": f"Token {bob}"}
        deadline = time.monotonic() + 10  # the worker acks just after it publishes
        while True:
            status = httpx.get(f"{base}/zsched/api/notifications/{welcome_id}/schedule_status/", headers=auth)
            assert status.status_code == 200, status.text
            if status.json()["scheduled_status"] == "sent" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert status.json()["scheduled_status"] == "sent"
        listed = httpx.get(f"{base}/signup/bob/welcome").json()
        assert listed == [{"id": welcome_id, "title": "Welcome", "status": "sent"}]
        assert httpx.get(f"{base}/zsched/version").json() == {"prefix": prefix}  # extra_routes, mounted too
        assert httpx.get(f"{base}/zsched/healthz").status_code == 200
    finally:
        server.stop()


def test_zsched_lifespan_in_a_starlette_hosts_own_lifespan(redis_url: str, prefix: str) -> None:
    zsched_app = create_app(zsched_settings(redis_url, prefix), run_worker=False)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with zsched_lifespan(zsched_app) as scheduler:
            yield {"zsched": scheduler}

    async def remind(request: Request) -> JSONResponse:
        r = await get_scheduler(request).schedule(["carol"], "Call", "the plumber", delay=3600)
        return JSONResponse({"id": r.notification_ids[0]})

    host = Starlette(routes=[Route("/remind", remind, methods=["POST"])], lifespan=lifespan)
    host.mount("/zsched", zsched_app)
    carol = {"Authorization": f"Token {token(redis_url, prefix, 'carol')}"}
    with TestClient(host) as client:
        reminder = client.post("/remind").json()["id"]
        shown = client.get(f"/zsched/api/notifications/{reminder}/", headers=carol)
        assert shown.status_code == 200, shown.text  # not 503: zsched's lifespan ran
        assert shown.json()["scheduled_status"] == "pending"


def test_get_scheduler_says_how_to_mount_when_zsched_is_not_in_the_lifespan_state() -> None:
    async def endpoint(request: Request) -> JSONResponse:
        get_scheduler(request)
        return JSONResponse({})

    with (
        TestClient(Starlette(routes=[Route("/", endpoint)])) as client,
        pytest.raises(RuntimeError, match=r"zsched.contrib.fastapi.mount"),
    ):
        client.get("/")


def test_test_mode_a_fastapi_endpoint_schedules_into_the_test_server(zsched_server: ZschedTestServer) -> None:
    """A project's unit test: the host's dependency overridden, no lifespan, no worker; the outbox asserted on."""
    app = example.build_app(welcome_after=timedelta(minutes=10))

    async def test_scheduler() -> AsyncIterator[AsyncScheduler]:
        async with zsched_server.async_scheduler() as zs:
            yield zs

    app.dependency_overrides[get_scheduler] = test_scheduler
    client = TestClient(app)  # not entered: the app's lifespan (zsched's connection, worker) does not run
    welcome_id = client.post("/signup", params={"user": "bob"}).json()["welcome_id"]
    [pending] = zsched_server.pending("bob")
    assert (pending.id, pending.title, pending.scheduled_at) == (
        welcome_id,
        "Welcome",
        zsched_server.now + timedelta(minutes=10),
    )
    assert zsched_server.run_due(advance=timedelta(minutes=9)) == []
    [sent] = zsched_server.run_due(advance=timedelta(minutes=1))
    assert (sent.id, sent.recipient) == (welcome_id, "bob")
