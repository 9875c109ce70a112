"""Webhooks are signed the Standard Webhooks way (standardwebhooks.com): a receiver verifies a real delivery
with the ``standardwebhooks`` library from PyPI, with a ``whsec_`` secret or a raw one, and during a secret
rotation with either secret. The 0.1 ``X-Zsched-*`` headers still come, until 0.3."""

from __future__ import annotations

import base64

import pytest
import redis.asyncio as aioredis
from standardwebhooks import Webhook, WebhookVerificationError

from tests.helpers import tick
from tests.integration.hookserver import HookServer
from zsched import Keyspace, Scheduler
from zsched.delivery import verify_signature
from zsched.delivery.webhook import WebhookChannel
from zsched.delivery.wiring import build_router
from zsched.errors import ConfigError
from zsched.settings import Settings

NEW = "whsec_" + base64.b64encode(b"the new key, 24 bytes...").decode()
OLD = "whsec_" + base64.b64encode(b"the old key, 24 bytes...").decode()


def _deliver(
    pinned: Scheduler, redis_url: str, prefix: str, secret: str, previous: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    with HookServer([200]) as hook:
        settings = Settings.of(
            redis_url=redis_url, webhook_url=hook.url, webhook_secret=secret, webhook_previous_secret=previous
        )
        router = build_router(settings, aioredis.Redis.from_url(redis_url), Keyspace(prefix))
        (nid,) = pinned.schedule(["erin"], "Signed", "...", delay=0, channels=["webhook"]).notification_ids
        tick(pinned, router)
    assert pinned.status(nid).scheduled_status == "sent"
    ((headers, body),) = hook.requests
    return nid, headers, body


def test_a_delivery_verifies_with_the_standardwebhooks_library(pinned: Scheduler, redis_url: str, prefix: str) -> None:
    nid, headers, body = _deliver(pinned, redis_url, prefix, NEW)
    assert headers["webhook-id"] == str(nid)
    assert headers["webhook-signature"].startswith("v1,") and " " not in headers["webhook-signature"]
    assert Webhook(NEW).verify(body, headers)["id"] == nid
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(NEW).verify(body + b" ", headers)
    with pytest.raises(WebhookVerificationError):  # the id is signed: a replay under another id fails
        Webhook(NEW).verify(body, {**headers, "webhook-id": str(nid + 1)})
    # The 0.1 headers, deprecated, still verify as before (signed with the secret string as it is).
    ts, sig = headers["x-zsched-timestamp"], headers["x-zsched-signature"]
    assert verify_signature(NEW, body, ts, sig) and headers["x-zsched-id"] == str(nid)


def test_a_raw_secret_is_its_own_bytes(pinned: Scheduler, redis_url: str, prefix: str) -> None:
    _, headers, body = _deliver(pinned, redis_url, prefix, "not base64 at all!")
    assert Webhook(b"not base64 at all!").verify(body, headers)["title"] == "Signed"


def test_during_a_rotation_either_secret_verifies(pinned: Scheduler, redis_url: str, prefix: str) -> None:
    _, headers, body = _deliver(pinned, redis_url, prefix, NEW, previous=OLD)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(NEW).verify(body, headers)  # a receiver already rotated
    Webhook(OLD).verify(body, headers)  # a receiver not rotated yet
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"someone else").decode()).verify(body, headers)


def test_a_whsec_secret_that_is_not_base64_is_refused() -> None:
    with pytest.raises(ConfigError, match="base64"):
        WebhookChannel("https://example.com/hook", "whsec_not*base64")
    with pytest.raises(ConfigError, match="key"):
        WebhookChannel("https://example.com/hook", "whsec_")
