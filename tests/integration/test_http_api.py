"""The API's endpoints on a real server: the seed's examples and test cases, listing, reschedule, stats."""

from __future__ import annotations

import time

import redis

from tests.integration.http_support import TestClient, Tokens, client, future, schedule_body, settings, tokens
from zsched.settings import Settings
from zsched.web.app import create_app

__all__ = ["client", "settings", "tokens"]  # fixtures used by name

SCHEDULE = "/api/notifications/schedule/"


def test_seed_examples_schedule_status_cancel(client: TestClient, tokens: Tokens) -> None:
    service = tokens.service()
    r = client.post(
        SCHEDULE,
        headers=service,
        json={"recipients": [1, 2, 3], "title": "Meeting", "message": "In 30 minutes", "scheduled_at": future()},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["count"] == 3 and len(body["notification_ids"]) == 3 and body["scheduled_at"].endswith("Z")
    first = body["notification_ids"][0]

    r = client.get(f"/api/notifications/{first}/schedule_status/", headers=service)
    assert r.status_code == 200
    status = r.json()
    assert set(status) == {
        "id",
        "title",
        "scheduled_at",
        "scheduled_status",
        "is_sent",
        "sent_at",
        "created_at",
        "recipient",
        "attempts",
        "delivered_at",
    }
    assert (
        status["id"],
        status["title"],
        status["scheduled_status"],
        status["is_sent"],
        status["sent_at"],
        status["recipient"],
        status["attempts"],
    ) == (first, "Meeting", "pending", False, None, "1", 0)

    r = client.delete(f"/api/notifications/{first}/cancel_scheduled/", headers=service)
    assert r.status_code == 200 and r.json()["scheduled_status"] == "cancelled" and r.json()["id"] == first
    r = client.delete(f"/api/notifications/{first}/cancel_scheduled/", headers=service)
    assert r.status_code == 409
    assert r.json()["scheduled_status"] == "cancelled" and r.json()["error"] == "not_pending"
    second = body["notification_ids"][1]
    r = client.delete(f"/api/notifications/{second}/scheduled/", headers=service)
    assert r.status_code == 200 and r.json()["scheduled_status"] == "cancelled"


def test_optional_fields_and_bearer(client: TestClient, tokens: Tokens) -> None:
    me = tokens.headers("alice", scheme="Bearer")
    r = client.post(
        SCHEDULE,
        headers=me,
        json=schedule_body(["alice"], type="reminder", priority="urgent", data={"room": "B2", "n": [1, 2.5]}),
    )
    assert r.status_code == 201, r.text
    (nid,) = r.json()["notification_ids"]
    full = client.get(f"/api/notifications/{nid}/", headers=me).json()
    assert (full["type"], full["priority"], full["data"], full["created_by"]) == (
        "reminder",
        "urgent",
        {"room": "B2", "n": [1, 2.5]},
        "alice",
    )


def test_idempotency_key_replays_first_answer(client: TestClient, tokens: Tokens, redis_url: str, prefix: str) -> None:
    service = tokens.service()
    body = schedule_body([1, 2])
    first = client.post(SCHEDULE, headers={**service, "Idempotency-Key": "order-42"}, json=body)
    again = client.post(SCHEDULE, headers={**service, "Idempotency-Key": "order-42"}, json=body)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    r = redis.Redis.from_url(redis_url)
    # one pending call holding both recipients, written once
    assert r.zcard(f"{prefix}:{{p0}}:due") == 1 and r.get(f"{prefix}:{{p0}}:call_pending") == b"2"
    r.close()
    other = client.post(SCHEDULE, headers={**service, "Idempotency-Key": "order-42"}, json=schedule_body([3]))
    assert other.status_code == 409 and other.json()["field"] == "Idempotency-Key"


def test_idempotency_keys_of_different_users_never_collide(client: TestClient, tokens: Tokens) -> None:
    """User ``a`` with key ``b:c`` and user ``a:b`` with key ``c`` are different requests (once one key)."""
    first = client.post(SCHEDULE, headers={**tokens.headers("a"), "Idempotency-Key": "b:c"}, json=schedule_body(["a"]))
    second = client.post(
        SCHEDULE, headers={**tokens.headers("a:b"), "Idempotency-Key": "c"}, json=schedule_body(["a:b"])
    )
    assert first.status_code == second.status_code == 201, second.text
    assert "Idempotent-Replayed" not in second.headers
    assert first.json()["notification_ids"] != second.json()["notification_ids"]


def test_list_newest_first_paginated_and_filtered(client: TestClient, tokens: Tokens) -> None:
    service, bob = tokens.service(), tokens.headers("bob")
    ids = [
        client.post(SCHEDULE, headers=service, json=schedule_body(["bob"])).json()["notification_ids"][0]
        for _ in range(5)
    ]
    client.delete(f"/api/notifications/{ids[0]}/cancel_scheduled/", headers=bob)
    page = client.get("/api/notifications/?limit=2", headers=bob).json()
    assert [n["id"] for n in page["items"]] == ids[:-3:-1] and page["next_cursor"] == ids[3]
    rest = client.get(f"/api/notifications/?limit=10&cursor={page['next_cursor']}", headers=bob).json()
    assert [n["id"] for n in rest["items"]] == ids[2::-1] and rest["next_cursor"] is None
    cancelled = client.get("/api/notifications/?status=cancelled", headers=bob).json()["items"]
    assert [n["id"] for n in cancelled] == [ids[0]]
    assert client.get("/api/notifications/", headers=tokens.headers("carol")).json()["items"] == []
    admin = tokens.headers("ops", admin=True)
    assert len(client.get("/api/notifications/?recipient=bob", headers=admin).json()["items"]) == 5
    r = client.get("/api/notifications/?recipient=bob", headers=tokens.headers("carol"))
    assert r.status_code == 403 and r.json()["field"] == "recipient"
    for query, field in (
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("cursor=-1", "cursor"),
        ("status=lost", "status"),
    ):
        r = client.get(f"/api/notifications/?{query}", headers=bob)
        assert r.status_code == 422 and r.json()["field"] == field, query


def test_reschedule(client: TestClient, tokens: Tokens) -> None:
    me = tokens.headers("alice")
    (nid,) = client.post(SCHEDULE, headers=me, json=schedule_body(["alice"])).json()["notification_ids"]
    later = future(7200)
    r = client.patch(f"/api/notifications/{nid}/", headers=me, json={"scheduled_at": later})
    assert r.status_code == 200 and r.json()["scheduled_status"] == "pending"
    assert r.json()["scheduled_at"][:19] == later[:19]
    r = client.patch(f"/api/notifications/{nid}/", headers=me, json={"scheduled_at": "2020-01-01T00:00:00Z"})
    assert r.status_code == 422 and r.json()["field"] == "scheduled_at" and "future" in r.json()["detail"]
    client.delete(f"/api/notifications/{nid}/cancel_scheduled/", headers=me)
    r = client.patch(f"/api/notifications/{nid}/", headers=me, json={"scheduled_at": later})
    assert r.status_code == 409 and r.json()["scheduled_status"] == "cancelled"


def test_stats_admin_only(client: TestClient, tokens: Tokens) -> None:
    service = tokens.service()
    client.post(SCHEDULE, headers=service, json=schedule_body([1, 2]))
    assert client.get("/api/stats", headers=service).status_code == 403
    stats = client.get("/api/stats", headers=tokens.headers("ops", admin=True)).json()
    assert stats["counts"]["pending"] == 2 and stats["totals"]["scheduled"] == 2
    assert stats["next_due_at"] is not None and stats["oldest_overdue_ms"] == 0
    assert [p["partition"] for p in stats["partitions"]] == [0] and stats["partitions"][0]["counts"]["pending"] == 2


def test_health_docs_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1") and "/api/notifications/schedule/" in doc["paths"]
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "cancel_scheduled" in page.text and "<script" not in page.text


def test_worker_in_lifespan_delivers_and_feeds_metrics(redis_url: str, prefix: str, tokens: Tokens) -> None:
    settings = Settings.of(redis_url=redis_url, prefix=prefix, rate_per_s=1000.0, rate_burst=1000)
    with TestClient(create_app(settings, run_worker=True)) as c:
        me = tokens.headers("alice")
        r = c.post(SCHEDULE, headers=me, json=schedule_body(["alice"], scheduled_at=future(0.3)))
        (nid,) = r.json()["notification_ids"]
        deadline = time.monotonic() + 15
        while c.get(f"/api/notifications/{nid}/schedule_status/", headers=me).json()["scheduled_status"] != "sent":
            assert time.monotonic() < deadline, "not delivered within 15 s"
            time.sleep(0.05)
        status = c.get(f"/api/notifications/{nid}/schedule_status/", headers=me).json()
        assert status["is_sent"] and status["sent_at"] is not None and status["attempts"] == 1
        text = c.get("/metrics").text
    assert "zsched_sent_total 1" in text and "zsched_scheduled_total 1" in text and "zsched_pending 0" in text
    assert "zsched_delivery_lateness_seconds_count 1" in text and 'le="+Inf"} 1' in text


def test_channels_are_chosen_among_what_this_server_delivers_through(
    client: TestClient, tokens: Tokens, settings: Settings
) -> None:
    me = tokens.headers("alice")
    r = client.post(SCHEDULE, headers=me, json=schedule_body(["alice"], channels=["websocket", "websocket"]))
    assert r.status_code == 201, r.text
    (nid,) = r.json()["notification_ids"]
    assert client.get(f"/api/notifications/{nid}/", headers=me).json()["channels"] == ["websocket"]
    r = client.post(SCHEDULE, headers=me, json=schedule_body(["alice"], channels=["webhook"]))
    assert r.status_code == 422 and r.json()["field"] == "channels"
    assert "must be among websocket" in r.json()["detail"]
    assert client.get("/openapi.json").json()["components"]["schemas"]["ScheduleBody"]["properties"]["channels"][
        "anyOf"
    ][0]["items"]["enum"] == ["websocket"]

    hooked = settings.replace(webhook_url="http://127.0.0.1:9/hook", webhook_secret="s3cret")
    with TestClient(create_app(hooked, run_worker=False)) as other:
        r = other.post(SCHEDULE, headers=me, json=schedule_body(["alice"], channels=["webhook"]))
        assert r.status_code == 201, r.text
        assert other.get("/openapi.json").json()["components"]["schemas"]["ScheduleBody"]["properties"]["channels"][
            "anyOf"
        ][0]["items"]["enum"] == ["websocket", "webhook"]
