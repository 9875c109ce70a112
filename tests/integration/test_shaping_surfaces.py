"""Pause and resume, and spread, through the HTTP API (pause: admin only; in the OpenAPI document) and the
``zsched`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.integration.http_support import TestClient, Tokens, client, schedule_body, settings, tokens

__all__ = ["client", "settings", "tokens"]  # fixtures used by name

SCHEDULE = "/api/notifications/schedule/"


def test_http_pause_and_resume_are_admin_only_and_show_in_stats(client: TestClient, tokens: Tokens) -> None:
    service, admin = tokens.service(), tokens.headers("ops", admin=True)
    assert client.post("/api/pause", headers=service, json={}).status_code == 403
    assert client.get("/api/pauses", headers=service).status_code == 403
    assert client.post("/api/resume", headers=service, json={}).status_code == 403
    got = client.post("/api/pause", headers=admin, json={"type": "promo"})
    assert got.status_code == 200, got.text
    assert got.json()["types"] == ["promo"] and got.json()["all"] is False and "promo" in got.json()["since"]
    assert client.post("/api/pause", headers=admin, json={"type": "*"}).status_code == 422
    assert client.post("/api/pause", headers=admin, json={"type": 5}).status_code in (400, 422)
    assert client.post("/api/pause", headers=admin, json={}).json()["all"] is True
    client.post(SCHEDULE, headers=service, json=schedule_body([1, 2]))
    stats = client.get("/api/stats", headers=admin).json()
    assert stats["paused"]["all"] and stats["paused"]["types"] == ["promo"] and stats["counts"]["pending"] == 2
    assert stats["partitions"][0]["paused"]["all"]
    after = client.post("/api/resume", headers=admin, json={"type": "promo"}).json()
    assert after["all"] and after["types"] == []
    nothing = {"all": False, "types": [], "since": {}, "parked": 0}
    assert client.post("/api/resume", headers=admin, json={}).json() == nothing
    assert client.get("/api/pauses", headers=admin).json()["all"] is False
    doc = client.get("/openapi.json").json()
    assert {"/api/pause", "/api/resume", "/api/pauses"} <= doc["paths"].keys()
    assert "PauseBody" in doc["components"]["schemas"] and "PausesView" in doc["components"]["schemas"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zsched.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ZSCHED_REDIS_URL": ""},
    )


def test_cli_pause_resume_and_stats(redis_url: str, prefix: str) -> None:
    target = ["--redis-url", redis_url, "--prefix", prefix]
    paused = _run("pause", *target, "--type", "promo")
    assert paused.returncode == 0, paused.stderr
    assert "paused: type promo" in paused.stdout
    everything = json.loads(_run("pause", *target, "--json").stdout)
    assert everything["all"] and everything["types"] == ["promo"]
    stats = json.loads(_run("stats", *target, "--json").stdout)
    assert stats["paused"]["all"] and stats["paused"]["types"] == ["promo"]
    assert _run("pause", *target, "--type", "*").returncode == 2, "a usage error"
    partly = _run("resume", *target, "--type", "promo")
    assert partly.returncode == 0 and "paused: everything" in partly.stdout
    resumed = _run("resume", *target)
    assert resumed.returncode == 0 and "nothing is paused" in resumed.stdout


def test_http_spread_s_spreads_a_call(client: TestClient, tokens: Tokens) -> None:
    service = tokens.service()
    made = client.post(SCHEDULE, headers=service, json=schedule_body(["a", "b", "c", "d"], spread_s=40))
    assert made.status_code == 201, made.text
    bad = client.post(SCHEDULE, headers=service, json=schedule_body(["a", "b"], spread_s=-1))
    assert bad.status_code == 422 and "spread" in bad.json()["field"]
    doc = client.get("/openapi.json").json()
    assert "spread_s" in doc["components"]["schemas"]["ScheduleBody"]["properties"]


def test_cli_schedule_spread(redis_url: str, prefix: str) -> None:
    target = ["--redis-url", redis_url, "--prefix", prefix]
    made = _run("schedule", *target, "--to", "a", "--to", "b", "--title", "t", "--message", "m", "--in", "1h")
    assert made.returncode == 0, made.stderr
    spread = [*target, "--to", "a", "--to", "b", "--title", "t", "--message", "m", "--in", "1h", "--spread", "10m"]
    assert _run("schedule", *spread).returncode == 0
    assert _run("schedule", *spread[:-1], "8d").returncode == 2, "past a week: a usage error"
