"""Delivery channels on a real server: signed webhooks (success, retry, dead letter, timeout), callables."""

from __future__ import annotations

import json

from tests.conftest import ManualClock
from tests.helpers import Recorder, tick
from tests.integration.hookserver import HookServer
from zsched import Scheduler
from zsched.delivery import SIGNATURE_HEADER, TIMESTAMP_HEADER, Router, WebhookChannel, verify_signature
from zsched.engine import list_dead, requeue_dead
from zsched.models import Notification

SECRET = "s3cret"


def _router(url: str, **options: float) -> Router:
    return Router({"webhook": WebhookChannel(url, SECRET, **options)}, default=("webhook",))


def test_webhook_success_is_signed(pinned: Scheduler) -> None:
    with HookServer([200]) as hook:
        (nid,) = pinned.schedule(["erin"], "Invoice", "is due", delay=0, data={"n": 1}).notification_ids
        tick(pinned, _router(hook.url))
        assert pinned.status(nid).scheduled_status == "sent"
    ((headers, body),) = hook.requests
    assert json.loads(body)["id"] == nid and json.loads(body)["data"] == {"n": 1}
    assert headers["x-zsched-id"] == str(nid) and headers["content-type"] == "application/json"
    signature, timestamp = headers[SIGNATURE_HEADER.lower()], headers[TIMESTAMP_HEADER.lower()]
    assert signature.startswith("sha256=")
    assert verify_signature(SECRET, body, timestamp, signature)
    assert not verify_signature("wrong", body, timestamp, signature)
    assert not verify_signature(SECRET, body + b" ", timestamp, signature)
    assert not verify_signature(SECRET, body, str(int(timestamp) - 3600), signature)


def test_webhook_failure_then_retry_succeeds(pinned: Scheduler, clock: ManualClock) -> None:
    with HookServer([500, 200]) as hook:
        (nid,) = pinned.schedule(["erin"], "Retry me", "...", delay=0).notification_ids
        tick(pinned, _router(hook.url))
        n = pinned.status(nid)
        assert (n.scheduled_status, n.attempts) == ("pending", 1)
        assert n.last_error is not None and "answered 500; expected 2xx" in n.last_error
        clock.advance(60)  # the policy fixture's first retry is 50 ms later
        tick(pinned, _router(hook.url))
        assert pinned.status(nid).scheduled_status == "sent"
    assert len(hook.requests) == 2


def test_webhook_failures_end_in_the_dead_letters_and_can_be_requeued(pinned: Scheduler, clock: ManualClock) -> None:
    with HookServer([503]) as hook:
        (nid,) = pinned.schedule(["erin"], "Doomed", "...", delay=0).notification_ids
        for _ in range(pinned.core.retry.max_attempts):
            tick(pinned, _router(hook.url))
            clock.advance(1000)
        n = pinned.status(nid)
        assert (n.scheduled_status, n.attempts) == ("failed", 4) and "503" in (n.last_error or "")
        assert [d.id for d in pinned.run(list_dead(pinned.core))] == [nid]
        assert pinned.run(requeue_dead(pinned.core, [nid, nid + 1000])) == [nid]
        n = pinned.status(nid)
        assert (n.scheduled_status, n.attempts, n.failed_at) == ("pending", 0, None)
        assert pinned.run(list_dead(pinned.core)) == []
    assert len(hook.requests) == 4


def test_webhook_timeout_is_a_failure(pinned: Scheduler) -> None:
    with HookServer([200], hang_s=2.0) as hook:
        (nid,) = pinned.schedule(["erin"], "Slow", "...", delay=0).notification_ids
        tick(pinned, _router(hook.url, timeout_s=0.3))
        n = pinned.status(nid)
    assert n.scheduled_status == "pending" and "did not answer within 0.3 s" in (n.last_error or "")


def test_router_names_channels_per_notification(pinned: Scheduler) -> None:
    seen: list[tuple[str, int]] = []

    async def audit(n: Notification) -> None:
        seen.append(("audit", n.id))

    def broken(n: Notification) -> None:
        raise RuntimeError("pager is down")

    router = Router({"websocket": Recorder()}, default=("audit",))
    router.register("audit", audit)
    router.register("pager", broken)
    plain = pinned.schedule(["erin"], "Default", "...", delay=0).notification_ids[0]
    both = pinned.schedule(["erin"], "Audit+pager", "...", delay=0, channels=["audit", "pager"]).notification_ids[0]
    unknown = pinned.schedule(["erin"], "Nowhere", "...", delay=0, channels=["sms"]).notification_ids[0]
    tick(pinned, router)
    assert sorted(seen) == sorted([("audit", plain), ("audit", both)])
    assert pinned.status(plain).scheduled_status == "sent"
    failed = pinned.status(both)
    assert failed.scheduled_status == "pending" and "pager is down" in (failed.last_error or "")
    lost = pinned.status(unknown)
    assert "names channel 'sms', which is not registered; registered: audit, pager, websocket" in (
        lost.last_error or ""
    )
