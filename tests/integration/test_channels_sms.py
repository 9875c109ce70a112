"""The sms channel against a local stand-in for a Twilio-shaped provider, driven by a real worker delivering real
scheduled notifications: what is sent, 429 and 5xx retried with backoff, a refused number and a missing one failed
at once, a provider that is down or hangs, credentials, and the settings wiring."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.conftest import ManualClock
from tests.integration.smsprovider import SID, TOKEN, SmsProvider
from zsched import AsyncScheduler, Scheduler
from zsched.delivery import Router, SmsChannel, TwilioMessages, Worker, build_router, enabled_channels
from zsched.delivery.sms import MAX_BODY, text
from zsched.engine import list_dead
from zsched.errors import ConfigError
from zsched.models import Notification, ms_to_datetime
from zsched.settings import Settings

SENDER = "+15005550006"


@pytest.fixture
def provider() -> Iterator[SmsProvider]:
    with SmsProvider() as p:
        yield p


def send_due(zs: Scheduler, url: str, *, token: str = TOKEN, sender: str = SENDER, **options: Any) -> Worker:
    """One real worker round over sms alone, the channel on the worker's own connection (as the wiring does)."""

    async def go() -> Worker:
        kwargs = zs.redis.connection_pool.connection_kwargs
        connection = aioredis.Redis(
            host=kwargs["host"], port=kwargs["port"], db=kwargs.get("db", 0), password=kwargs.get("password")
        )
        scheduler = AsyncScheduler(connection, core=zs.core)
        twilio = TwilioMessages(SID, token, sender, base_url=url, timeout_s=options.pop("timeout_s", 5.0))
        router = Router({"sms": SmsChannel(connection, zs.core.keys, twilio, **options)}, default=("sms",))
        worker = Worker(scheduler, router)
        try:
            await worker.tick()
        finally:
            await router.aclose()
            await scheduler.close()
        return worker

    return asyncio.run(go())


def test_a_due_notification_is_posted_as_twilio_expects(pinned: Scheduler, provider: SmsProvider) -> None:
    pinned.set_contact("alice", phone="+14155550123")
    (nid,) = pinned.schedule(["alice"], "Dentist", "tomorrow at 9 ✓", delay=0).notification_ids
    send_due(pinned, provider.url)
    assert pinned.status(nid).scheduled_status == "sent"
    assert provider.accepted == [{"To": "+14155550123", "From": SENDER, "Body": "Dentist\ntomorrow at 9 ✓"}]


def test_a_messaging_service_sender(pinned: Scheduler, provider: SmsProvider) -> None:
    pinned.set_contact("alice", phone="+14155550123")
    pinned.schedule(["alice"], "Hi", "", delay=0)
    send_due(pinned, provider.url, sender="MG" + "1" * 32)
    assert provider.accepted == [{"To": "+14155550123", "MessagingServiceSid": "MG" + "1" * 32, "Body": "Hi"}]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_429_and_5xx_are_retried_with_backoff(
    pinned: Scheduler, clock: ManualClock, provider: SmsProvider, status: int
) -> None:
    pinned.set_contact("bob", phone="+447700900123")
    provider.answers["+447700900123"] = [status]
    (nid,) = pinned.schedule(["bob"], "Retry", "me", delay=0).notification_ids
    send_due(pinned, provider.url)
    n = pinned.status(nid)
    assert (n.scheduled_status, n.attempts) == ("pending", 1)
    assert f"answered {status} (error {20000 + status}); retrying" in (n.last_error or "")
    assert n.scheduled_at.timestamp() * 1000 >= clock.ms + 50  # the retry policy's first backoff
    clock.advance(60)
    send_due(pinned, provider.url)
    assert pinned.status(nid).scheduled_status == "sent" and len(provider.accepted) == 1
    assert len(provider.requests) == 2


def test_a_refused_number_fails_at_once_with_the_status_and_code(pinned: Scheduler, provider: SmsProvider) -> None:
    pinned.set_contact("carol", phone="+15005550001")
    provider.answers["+15005550001"] = [400, 400, 400, 400]
    (nid,) = pinned.schedule(["carol"], "Never", "arrives", delay=0).notification_ids
    send_due(pinned, provider.url)
    n = pinned.status(nid)
    assert (n.scheduled_status, n.attempts) == ("failed", 1)
    assert n.last_error == f"SmsRejectedError: SMS provider {provider.url} refused the message with 400 (error 21211)"
    assert "+15005550001 is not a valid phone number" in (n.last_error_detail or "")  # admins only
    assert [d.id for d in pinned.run(list_dead(pinned.core))] == [nid] and len(provider.requests) == 1


def test_no_phone_number_fails_at_once_saying_so(pinned: Scheduler, provider: SmsProvider) -> None:
    pinned.set_contact("dave", email="dave@example.com")
    (nid,) = pinned.schedule(["dave"], "No", "number", delay=0).notification_ids
    send_due(pinned, provider.url)
    n = pinned.status(nid)
    assert (n.scheduled_status, n.attempts) == ("failed", 1) and provider.requests == []
    assert "recipient dave has no phone number in their contact data" in (n.last_error or "")


def test_wrong_credentials_are_retried_not_failed(pinned: Scheduler, provider: SmsProvider) -> None:
    pinned.set_contact("erin", phone="+14155550100")
    (nid,) = pinned.schedule(["erin"], "Auth", "...", delay=0).notification_ids
    send_due(pinned, provider.url, token="wrong")
    n = pinned.status(nid)
    assert (n.scheduled_status, n.attempts) == ("pending", 1)
    assert "refused the credentials with 401 (error 20003); check ZSCHED_TWILIO_*" in (n.last_error or "")


def test_a_provider_that_is_down_or_hangs_is_retried(pinned: Scheduler, clock: ManualClock) -> None:
    pinned.set_contact("frank", phone="+14155550101")
    (nid,) = pinned.schedule(["frank"], "Later", "...", delay=0).notification_ids
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    send_due(pinned, dead)
    n = pinned.status(nid)
    assert (n.scheduled_status, n.attempts) == ("pending", 1) and "could not be reached (ConnectError)" in (
        n.last_error or ""
    )
    clock.advance(60)
    with SmsProvider(hang_s=3.0) as slow:
        started = time.monotonic()
        send_due(pinned, slow.url, timeout_s=0.5)
        assert time.monotonic() - started < 3.0
    n = pinned.status(nid)
    assert (n.scheduled_status, n.attempts) == ("pending", 2) and "did not answer within 0.5 s" in (n.last_error or "")


def test_a_batch_mixing_every_outcome_goes_out_concurrently(pinned: Scheduler) -> None:
    people = {f"u{i}": f"+1415555{i:04d}" for i in range(20)}
    for who, number in people.items():
        pinned.set_contact(who, phone=number)
    ids = pinned.schedule([*people, "nobody"], "Batch", "x", delay=0).notification_ids
    with SmsProvider(hang_s=0.1) as provider:
        provider.answers[people["u3"]] = [429]
        provider.answers[people["u4"]] = [400]
        send_due(pinned, provider.url, concurrency=4)
    assert 2 <= provider.most_at_once <= 4  # concurrent, and never more than allowed
    status = {who: pinned.status(i).scheduled_status for who, i in zip([*people, "nobody"], ids, strict=True)}
    assert status.pop("u3") == "pending" and status.pop("u4") == "failed" and status.pop("nobody") == "failed"
    assert set(status.values()) == {"sent"}
    assert sorted(f["To"] for f in provider.accepted) == sorted(people[w] for w in status)


def test_a_long_message_is_cut_to_the_providers_limit() -> None:
    n = Notification(
        id=1,
        recipient="a",
        title="T",
        message="x" * 2000,
        scheduled_at=ms_to_datetime(0),
        scheduled_status="processing",
        created_at=ms_to_datetime(0),
    )
    body = text(n)
    assert len(body) == MAX_BODY and body.startswith("T\nxxx") and body.endswith("…")


def test_settings_enable_the_channel_and_check_it() -> None:
    unused = aioredis.Redis()  # building channels does no I/O
    assert "sms" not in enabled_channels(Settings.of())
    on = Settings.of(twilio_account_sid=SID, twilio_auth_token=TOKEN, twilio_from=SENDER, twilio_url="http://x:1")
    assert "sms" in enabled_channels(on)
    router = build_router(on, unused, on.core().keys)
    sms = router.channels["sms"]
    assert isinstance(sms, SmsChannel) and isinstance(sms.provider, TwilioMessages)
    assert sms.provider.url == f"http://x:1/2010-04-01/Accounts/{SID}/Messages.json"
    asyncio.run(router.aclose())
    with pytest.raises(ConfigError, match="ZSCHED_TWILIO_AUTH_TOKEN and ZSCHED_TWILIO_FROM"):
        build_router(Settings.of(twilio_account_sid=SID), unused, on.core().keys)
    with pytest.raises(ConfigError, match="ZSCHED_TWILIO_FROM must be an E.164 number"):
        build_router(on.replace(twilio_from="0123"), unused, on.core().keys)
