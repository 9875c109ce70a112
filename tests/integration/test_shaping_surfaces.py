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


def test_http_preferences_by_the_recipient_an_admin_or_the_preferences_scope(
    client: TestClient, tokens: Tokens
) -> None:
    ana, admin = tokens.headers("ana"), tokens.headers("ops", admin=True)
    prefs, stranger = tokens.headers("prefs-svc", scopes=("preferences:write",)), tokens.headers("mallory")
    path = "/api/contacts/?recipient=ana"
    got = client.patch(path, headers=ana, json={"zone": "Europe/Lisbon", "email": "ana@example.com"})
    assert got.status_code == 200 and got.json()["zone"] == "Europe/Lisbon"
    assert client.patch(path, headers=admin, json={"quiet_hours": "22:00-07:00"}).json()["quiet_hours"] == "22:00-07:00"
    by_scope = client.patch(path, headers=prefs, json={"zone": "Asia/Tokyo"})
    assert by_scope.status_code == 200, by_scope.text
    assert by_scope.json()["zone"] == "Asia/Tokyo" and by_scope.json()["email"] is None, "it sees only preferences"
    assert client.get(path, headers=prefs).json()["email"] is None
    assert client.patch(path, headers=prefs, json={"email": "x@example.com"}).status_code == 403
    assert client.patch(path, headers=stranger, json={"zone": "UTC"}).status_code == 403
    assert client.patch(path, headers=ana, json={"zone": "Mars/Olympus"}).status_code == 422
    assert client.patch(path, headers=ana, json={"quiet_hours": "late"}).status_code == 422
    assert client.get(path, headers=ana).json()["email"] == "ana@example.com"


def test_http_deliver_at_local(client: TestClient, tokens: Tokens) -> None:
    service, admin = tokens.service(), tokens.headers("ops", admin=True)
    client.patch("/api/contacts/?recipient=tok", headers=admin, json={"zone": "Asia/Tokyo"})
    body = {"recipients": ["tok", "utc"], "title": "t", "message": "m"}
    made = client.post(
        SCHEDULE, headers=service, json={**body, "deliver_at_local": "09:00", "local_date": "2031-03-04"}
    )
    assert made.status_code == 201, made.text
    tok, utc = made.json()["notification_ids"]
    assert len(made.json()["batch_ids"]) == 2
    assert client.get(f"/api/notifications/{tok}/", headers=admin).json()["scheduled_at"].startswith("2031-03-04T00:00")
    assert client.get(f"/api/notifications/{utc}/", headers=admin).json()["scheduled_at"].startswith("2031-03-04T09:00")
    missing = client.post(SCHEDULE, headers=service, json=body)
    assert missing.status_code == 422 and missing.json()["field"] == "scheduled_at"
    no_date = client.post(SCHEDULE, headers=service, json={**body, "deliver_at_local": "09:00"})
    assert no_date.status_code == 422 and no_date.json()["field"] == "local_date"


def test_cli_zone_quiet_hours_and_at_local(redis_url: str, prefix: str) -> None:
    target = ["--redis-url", redis_url, "--prefix", prefix]
    contact = _run("contact", "set", *target, "tok", "--zone", "Asia/Tokyo", "--quiet-hours", "22:00-07:00", "--json")
    assert contact.returncode == 0, contact.stderr
    assert json.loads(contact.stdout)["zone"] == "Asia/Tokyo"
    assert _run("contact", "set", *target, "tok", "--zone", "Nowhere/Else").returncode == 2
    made = _run(
        "schedule", *target, "--to", "tok", "--title", "t", "--message", "m",
        "--at-local", "09:00", "--local-date", "2031-03-04", "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    (nid,) = json.loads(made.stdout)["notification_ids"]
    status = json.loads(_run("status", *target, str(nid), "--json").stdout)
    assert status["scheduled_at"].startswith("2031-03-04T00:00:00")
