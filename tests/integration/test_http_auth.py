"""Who may do what over HTTP: 401s, the ownership matrix, the schedule:any scope, rate limiting."""

from __future__ import annotations

import pytest
import redis

from tests.integration.http_support import TestClient, Tokens, client, future, schedule_body, settings, tokens
from zsched.settings import Settings
from zsched.web.app import create_app

__all__ = ["client", "settings", "tokens"]

SCHEDULE = "/api/notifications/schedule/"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Token",
        "Token ",
        "Basic dXNlcjpwYXNz",
        "Token zs_not-a-real-token",
        "Bearer nonsense",
        "zs_missing-scheme",
    ],
)
def test_no_or_bad_token_is_401_with_challenge(client: TestClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    for method, path in (
        ("POST", SCHEDULE),
        ("GET", "/api/notifications/"),
        ("GET", "/api/stats"),
        ("GET", "/api/notifications/1/schedule_status/"),
        ("DELETE", "/api/notifications/1/cancel_scheduled/"),
    ):
        r = client.request(method, path, headers=headers, json=schedule_body([1]))
        assert r.status_code == 401, (method, path, r.text)
        assert "Token" in r.headers["WWW-Authenticate"] and r.json()["field"] == "Authorization"


def test_revoked_token_is_401(client: TestClient, tokens: Tokens) -> None:
    headers = tokens.headers("alice")
    assert client.get("/api/notifications/", headers=headers).status_code == 200
    assert tokens.store.revoke(tokens.redis, headers["Authorization"].split()[1])
    assert client.get("/api/notifications/", headers=headers).status_code == 401


def test_scheduling_for_others_needs_scope(client: TestClient, tokens: Tokens, redis_url: str, prefix: str) -> None:
    alice = tokens.headers("alice")
    assert client.post(SCHEDULE, headers=alice, json=schedule_body(["alice", "alice"])).status_code == 201
    r = client.post(SCHEDULE, headers=alice, json=schedule_body(["alice", "bob"]))
    assert r.status_code == 403 and r.json()["field"] == "recipients" and "schedule:any" in r.json()["detail"]
    store = redis.Redis.from_url(redis_url)
    assert store.zcard(f"{prefix}:{{p0}}:due") == 1  # the rejected batch wrote nothing
    store.close()
    assert client.post(SCHEDULE, headers=tokens.service(), json=schedule_body(["bob"])).status_code == 201
    assert (
        client.post(SCHEDULE, headers=tokens.headers("ops", admin=True), json=schedule_body(["bob"])).status_code == 201
    )


def test_ownership_matrix(client: TestClient, tokens: Tokens) -> None:
    """Creator, recipient and admin see and change it; a stranger and another service get 404."""
    creator = tokens.service("billing")
    who = {
        "creator": creator,
        "recipient": tokens.headers("bob"),
        "admin": tokens.headers("ops", admin=True),
        "stranger": tokens.headers("mallory"),
        "other service": tokens.service("crm"),
    }
    allowed = {"creator", "recipient", "admin"}

    def fresh() -> int:
        r = client.post(SCHEDULE, headers=creator, json=schedule_body(["bob"]))
        return int(r.json()["notification_ids"][0])

    for name, headers in who.items():
        nid = fresh()
        expect = 200 if name in allowed else 404
        for path in (f"/api/notifications/{nid}/schedule_status/", f"/api/notifications/{nid}/"):
            r = client.get(path, headers=headers)
            assert r.status_code == expect, (name, path, r.text)
        listed = [n["id"] for n in client.get("/api/notifications/", headers=headers).json()["items"]]
        # the default list is what the caller receives; an admin's is everything
        assert (nid in listed) == (name in ("recipient", "admin")), name
        r = client.patch(f"/api/notifications/{nid}/", headers=headers, json={"scheduled_at": future(7200)})
        assert r.status_code == expect, (name, r.text)
        r = client.delete(f"/api/notifications/{nid}/cancel_scheduled/", headers=headers)
        assert r.status_code == expect, (name, r.text)
        if expect == 404:
            unknown = client.delete("/api/notifications/99999999/cancel_scheduled/", headers=headers)
            assert unknown.status_code == 404  # the same answer as a truly unknown id: existence does not leak
            assert r.json() == {**unknown.json(), "detail": unknown.json()["detail"].replace("99999999", str(nid))}
            status = client.get(f"/api/notifications/{nid}/schedule_status/", headers=creator).json()
            assert status["scheduled_status"] == "pending"


def test_rate_limit_429_with_retry_after(redis_url: str, prefix: str, tokens: Tokens) -> None:
    settings = Settings.of(redis_url=redis_url, prefix=prefix, rate_per_s=0.01, rate_burst=3)
    with TestClient(create_app(settings, run_worker=False)) as c:
        alice, bob = tokens.headers("alice"), tokens.headers("bob")
        codes = [c.get("/api/notifications/", headers=alice).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/api/notifications/", headers=alice)
        assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 100
        assert r.json()["error"] == "rate_limited"
        assert c.get("/api/notifications/", headers=bob).status_code == 200  # per token
        assert c.get("/healthz").status_code == 200  # probes are not limited
    with TestClient(create_app(settings, run_worker=False)) as other_process:  # the bucket lives in Redis
        assert other_process.get("/api/notifications/", headers=alice).status_code == 429
