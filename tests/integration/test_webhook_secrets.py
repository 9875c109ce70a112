"""A webhook URL is a bearer secret: a failed delivery shows its recipient a generic reason, its creator an
error naming only the receiver's origin, and admins what the receiver answered; logs name only the origin."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.conftest import ManualClock
from tests.helpers import tick
from tests.integration.hookserver import HookServer
from tests.integration.http_support import TestClient, Tokens, client, settings, tokens
from zsched import Scheduler
from zsched.delivery import Router, WebhookChannel

__all__ = ["client", "settings", "tokens"]

PATH_SECRET = "T0001/B0002/XoXpPathSecret"
QUERY_SECRET = "QuerySecret42"
BODY_SECRET = b"invalid_token: xoxb-BodySecret-1234 rejected"
SECRETS = (PATH_SECRET, QUERY_SECRET, "XoXpPathSecret", "BodySecret")


def _router(url: str) -> Router:
    return Router({"webhook": WebhookChannel(url, "s3cret")}, default=("webhook",))


def _views(client: TestClient, headers: dict[str, str], nid: int, *, admin: bool = False) -> list[dict[str, Any]]:
    """The detail view and (where the caller may list it) the list item; neither, nor the status view,
    names the URL's path or query, and only an admin's names the response body."""
    one = client.get(f"/api/notifications/{nid}/", headers=headers)
    status = client.get(f"/api/notifications/{nid}/schedule_status/", headers=headers)
    listed = client.get("/api/notifications/?recipient=erin", headers=headers)
    assert one.status_code == status.status_code == 200, (one.text, status.text)
    hidden = SECRETS[:3] if admin else SECRETS
    for r in (one, status, listed):
        assert not any(s in r.text for s in hidden), r.text
    items = [i for i in listed.json()["items"] if i["id"] == nid] if listed.status_code == 200 else []
    return [one.json(), *items]


def test_each_viewer_sees_only_its_share_of_a_webhook_failure(
    pinned: Scheduler, clock: ManualClock, client: TestClient, tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    recipient, creator, admin = tokens.headers("erin"), tokens.service("billing"), tokens.headers("ops", admin=True)
    with HookServer([500], body=BODY_SECRET) as hook:
        url = f"{hook.url}/{PATH_SECRET}?token={QUERY_SECRET}"
        (nid,) = pinned.schedule(["erin"], "Invoice", "is due", delay=0, created_by="billing").notification_ids
        with caplog.at_level(logging.INFO, logger="zsched"):
            tick(pinned, _router(url))
        host = hook.url.removesuffix("/hook")  # http://127.0.0.1:<port>
        public = f"WebhookError: webhook {host} answered 500; expected 2xx"

        for view in _views(client, recipient, nid):
            assert view["last_error"] == "delivery failed; it will be retried" and "last_error_detail" not in view
        for view in _views(client, creator, nid):
            assert view["last_error"] == public and "last_error_detail" not in view
        one, listed = _views(client, admin, nid, admin=True)
        assert one["last_error"] == listed["last_error"] == public
        assert one["last_error_detail"] == listed["last_error_detail"] == f"response body: {BODY_SECRET.decode()!r}"

        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert host in logged and not any(s in logged for s in SECRETS), logged

        for _ in range(pinned.core.retry.max_attempts):
            clock.advance(1000)
            tick(pinned, _router(url))
    assert pinned.status(nid).scheduled_status == "failed"
    for view in _views(client, recipient, nid):
        assert view["last_error"] == "delivery failed for good"
    assert _views(client, creator, nid)[0]["last_error"] == public


def test_the_creator_never_sees_a_url_path_stored_before_the_fix(
    pinned: Scheduler, client: TestClient, tokens: Tokens
) -> None:
    """Records written by 0.1 name the full URL and the response body in last_error; the views cut the URL
    to its origin for everyone, and the body for all but admins."""
    (nid,) = pinned.schedule(["erin"], "Old", "...", delay=0, created_by="billing").notification_ids
    old = (
        f"WebhookError: webhook https://user:pw@hooks.example.com/{PATH_SECRET}?token={QUERY_SECRET} answered 500; "
        f"expected 2xx: {BODY_SECRET.decode()!r}"
    )
    pinned.run(pinned.core.claim(pinned.core.keys.partitions[0], 10, 30_000))
    pinned.run(pinned.core.fail(pinned.core.keys.partitions[0], [(pinned.status(nid), old)], {nid: 50}))
    for view in _views(client, tokens.service("billing"), nid):
        assert view["last_error"] == "WebhookError: webhook https://hooks.example.com answered 500; expected 2xx"
    for view in _views(client, tokens.headers("ops", admin=True), nid, admin=True):
        assert view["last_error"] == (
            f"WebhookError: webhook https://hooks.example.com answered 500; expected 2xx: {BODY_SECRET.decode()!r}"
        )


def test_unreachable_webhook_names_only_its_origin(pinned: Scheduler) -> None:
    with HookServer([200]) as hook:
        url = f"{hook.url}/{PATH_SECRET}?token={QUERY_SECRET}"
    (nid,) = pinned.schedule(["erin"], "Nobody home", "...", delay=0).notification_ids
    tick(pinned, _router(url))  # the server is gone: connection refused
    n = pinned.status(nid)
    host = hook.url.removesuffix("/hook")
    assert n.last_error == f"WebhookError: webhook {host} could not be reached (ConnectError)"
    assert not any(s in f"{n.last_error} {n.last_error_detail}" for s in SECRETS)


def test_httpx_request_lines_show_only_the_webhook_origin(caplog: pytest.LogCaptureFixture) -> None:
    """httpx logs every request's URL at INFO; with a webhook channel built, those lines keep only the origin."""
    import httpx

    from zsched.delivery.webhook import WebhookChannel

    WebhookChannel("https://user:pw@hooks.example.com/services/T0/B0/XoXpPathSecret?token=QuerySecret42", "s")
    with caplog.at_level(logging.INFO, logger="httpx"):
        url = httpx.URL("https://user:pw@hooks.example.com/services/T0/B0/XoXpPathSecret?token=QuerySecret42")
        logging.getLogger("httpx").info('HTTP Request: %s %s "%s %d %s"', "POST", url, "HTTP/1.1", 500, "Error")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert line == 'HTTP Request: POST https://hooks.example.com "HTTP/1.1 500 Error"'
