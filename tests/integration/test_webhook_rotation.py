"""Rotating the webhook secret: while ``ZSCHED_WEBHOOK_PREVIOUS_SECRET`` is set, each request carries the
current and the previous secret's signatures in one header, and ``verify_signature`` accepts a header with
several signatures when any one is the receiver's."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from tests.helpers import tick
from tests.integration.hookserver import HookServer
from zsched import Keyspace, Scheduler
from zsched.delivery import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from zsched.delivery.webhook import sign
from zsched.delivery.wiring import build_router
from zsched.settings import Settings


def test_a_rotating_channel_signs_with_both_secrets(pinned: Scheduler, redis_url: str, prefix: str) -> None:
    with HookServer([200]) as hook:
        settings = Settings.of(
            redis_url=redis_url, webhook_url=hook.url, webhook_secret="new", webhook_previous_secret="old"
        )
        router = build_router(settings, aioredis.Redis.from_url(redis_url), Keyspace(prefix))
        (nid,) = pinned.schedule(["erin"], "Rotating", "...", delay=0, channels=["webhook"]).notification_ids
        tick(pinned, router)
    assert pinned.status(nid).scheduled_status == "sent"
    ((headers, body),) = hook.requests
    signature, timestamp = headers[SIGNATURE_HEADER.lower()], headers[TIMESTAMP_HEADER.lower()]
    assert signature == f"{sign('new', timestamp, body)}, {sign('old', timestamp, body)}"
    assert verify_signature("new", body, timestamp, signature)  # a receiver already rotated
    assert verify_signature("old", body, timestamp, signature)  # a receiver not rotated yet
    assert not verify_signature("other", body, timestamp, signature)
    assert not verify_signature("old", body + b" ", timestamp, signature)


def test_without_a_previous_secret_one_signature_is_sent(pinned: Scheduler, redis_url: str, prefix: str) -> None:
    with HookServer([200]) as hook:
        settings = Settings.of(redis_url=redis_url, webhook_url=hook.url, webhook_secret="new")
        (nid,) = pinned.schedule(["erin"], "Plain", "...", delay=0, channels=["webhook"]).notification_ids
        tick(pinned, build_router(settings, aioredis.Redis.from_url(redis_url), Keyspace(prefix)))
    assert pinned.status(nid).scheduled_status == "sent"
    ((headers, body),) = hook.requests
    assert headers[SIGNATURE_HEADER.lower()] == sign("new", headers[TIMESTAMP_HEADER.lower()], body)


def test_verify_signature_accepts_any_of_several() -> None:
    now = str(int(time.time()))
    body = b'{"id":1}'
    both = f"{sign('a', now, body)},{sign('b', now, body)}"
    assert verify_signature("a", body, now, both) and verify_signature("b", body, now, both)
    assert not verify_signature("c", body, now, both)
    assert not verify_signature("a", body, now, "")
    assert not verify_signature("a", body, str(int(now) - 3600), both)  # still only while recent
