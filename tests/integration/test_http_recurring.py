"""Recurring schedules over HTTP: /api/recurring, with the notifications' authorization rules."""

from __future__ import annotations

from tests.integration.http_support import TestClient, Tokens, client, settings, tokens

__all__ = ["client", "settings", "tokens"]  # fixtures used by name

R = "/api/recurring"


def _body(recipients: list[object], **extra: object) -> dict[str, object]:
    rule = {} if "every_s" in extra else {"cron": "0 9 * * MON-FRI"}
    return {"recipients": recipients, "title": "Stand-up", "message": "in 5", **rule, **extra}


def test_create_read_preview_pause_resume_delete(client: TestClient, tokens: Tokens) -> None:
    me = tokens.headers("alice")
    r = client.post(R, headers=me, json=_body(["alice"], timezone="Europe/Berlin", data={"room": 4}, max_count=30))
    assert r.status_code == 201, r.text
    s = r.json()
    assert (s["status"], s["cron"], s["timezone"], s["created_by"], s["count"], s["max_count"]) == (
        "active",
        "0 9 * * MON-FRI",
        "Europe/Berlin",
        "alice",
        1,
        30,
    )
    (occurrence,) = s["occurrence_ids"]
    n = client.get(f"/api/notifications/{occurrence}/", headers=me).json()
    assert (n["scheduled_status"], n["scheduled_at"], n["data"]) == ("pending", s["next_at"], {"room": 4})
    assert client.get(f"{R}/{s['id']}", headers=me).json() == s
    times = client.get(f"{R}/{s['id']}/preview?count=5", headers=me).json()["times"]
    assert len(times) == 5 and times[0] == s["next_at"] and times == sorted(times)
    paused = client.post(f"{R}/{s['id']}/pause", headers=me).json()
    assert paused["status"] == "paused"
    assert client.get(f"/api/notifications/{occurrence}/", headers=me).json()["scheduled_status"] == "cancelled"
    resumed = client.post(f"{R}/{s['id']}/resume", headers=me).json()
    assert resumed["status"] == "active" and resumed["count"] == 2
    page = client.get(R, headers=me).json()
    assert [x["id"] for x in page["items"]] == [s["id"]] and page["next_cursor"] is None
    r = client.delete(f"{R}/{s['id']}", headers=me)
    assert r.status_code == 200 and r.json()["id"] == s["id"]
    r = client.get(f"{R}/{s['id']}", headers=me)
    assert r.status_code == 404 and "recurring schedule" in r.json()["detail"]


def test_a_user_sees_only_their_own_schedules(client: TestClient, tokens: Tokens) -> None:
    alice, bob, admin = tokens.headers("alice"), tokens.headers("bob"), tokens.headers("root", admin=True)
    sid = client.post(R, headers=alice, json=_body(["alice"], every_s=3600)).json()["id"]
    for method, path in (
        ("GET", f"{R}/{sid}"),
        ("DELETE", f"{R}/{sid}"),
        ("POST", f"{R}/{sid}/pause"),
        ("POST", f"{R}/{sid}/resume"),
        ("GET", f"{R}/{sid}/preview"),
    ):
        assert client.request(method, path, headers=bob).status_code == 404, (method, path)
    assert client.get(R, headers=bob).json()["items"] == []
    assert client.get(f"{R}?created_by=alice", headers=bob).status_code == 403
    assert [x["id"] for x in client.get(f"{R}?created_by=alice", headers=admin).json()["items"]] == [sid]
    assert client.get(f"{R}/{sid}", headers=admin).status_code == 200
    assert client.get(f"{R}/{sid}", headers=alice).status_code == 200  # still there: bob changed nothing


def test_scheduling_for_others_needs_the_scope_and_bad_rules_are_422(client: TestClient, tokens: Tokens) -> None:
    alice = tokens.headers("alice")
    r = client.post(R, headers=alice, json=_body(["bob"]))
    assert r.status_code == 403 and r.json()["field"] == "recipients"
    assert client.post(R, headers=tokens.service(), json=_body(["bob", "carol"])).status_code == 201
    for extra, field in (
        ({"cron": "61 * * * *"}, "cron"),
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"catch_up": "every"}, "catch_up"),
        ({"cron": None}, "cron"),
        ({"every_s": 0.5}, "every_s"),
        ({"every_s": 60, "max_count": 2.5}, "max_count"),
        ({"end_at": "2001-01-01T00:00:00Z"}, "end_at"),
        ({"start_at": "2030-01-01T00:00:00"}, "start_at"),
    ):
        r = client.post(R, headers=alice, json=_body(["alice"], **extra))
        assert r.status_code == 422 and r.json()["field"] == field, (extra, r.text)
    assert client.get(R, headers=alice).json()["items"] == [], "a refused request writes nothing"


def test_an_idempotency_key_makes_create_safe_to_retry(client: TestClient, tokens: Tokens) -> None:
    alice, bob = tokens.headers("alice"), tokens.headers("bob")
    first = client.post(R, headers={**alice, "Idempotency-Key": "k1"}, json=_body(["alice"]))
    again = client.post(R, headers={**alice, "Idempotency-Key": "k1"}, json=_body(["alice"]))
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    clash = client.post(R, headers={**alice, "Idempotency-Key": "k1"}, json=_body(["alice"], max_count=3))
    assert clash.status_code == 409, clash.text
    bobs = client.post(R, headers={**bob, "Idempotency-Key": "k1"}, json=_body(["bob"]))  # keys are per user
    assert bobs.status_code == 201 and bobs.json()["id"] != first.json()["id"]
    bad = client.post(R, headers={**alice, "Idempotency-Key": "x" * 65}, json=_body(["alice"]))
    assert bad.status_code == 422 and bad.json()["field"] == "Idempotency-Key"
    assert [s["id"] for s in client.get(R, headers=alice).json()["items"]] == [first.json()["id"]]
