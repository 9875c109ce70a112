"""End to end: one template, 100 recipients of mixed locales over four partitions, scheduled in two calls (email and
SMS for those with a phone, email alone for the rest), delivered by a real worker to a real SMTP server (aiosmtpd)
and the SMS provider's stand-in, each message rendered in its recipient's locale (the fallback for a locale with no
variant), the HTML part only where the locale's variant has one; then the template can be deleted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis

from tests.conftest import ManualClock
from tests.integration.mailserver import MailServer
from tests.integration.smsprovider import SID, TOKEN, SmsProvider
from zsched import AsyncScheduler, Keyspace, RetryPolicy, Scheduler
from zsched.delivery import EmailChannel, Router, SmsChannel, TwilioMessages, Worker
from zsched.engine import Core

TEMPLATE = {
    "en": {
        "title": "Your {{ plan }} plan, {{ recipient }}",
        "message": "Renews on {{ day }}.",
        "html": "<p>Your <b>{{ plan }}</b> plan renews on {{ day }}.</p>",
    },
    "fr": {
        "title": "Votre offre {{ plan }}, {{ recipient }}",
        "message": "Renouvelée le {{ day }}.",
        "html": "<p>Votre offre <b>{{ plan }}</b> est renouvelée le {{ day }}.</p>",
    },
    "pt-BR": {"title": "Seu plano {{ plan }}, {{ recipient }}", "message": "Renova em {{ day }}."},
}
CONTEXT = {"plan": "Pro & Co", "day": "2027-01-01"}
LOCALES = ("en", "fr", "pt-BR", "de", None)  # de has no variant and None no locale: both get the fallback, en
EXPECTED = {  # locale -> (subject, text, html or None)
    "en": (
        "Your Pro & Co plan, {r}",
        "Renews on 2027-01-01.",
        "<p>Your <b>Pro &amp; Co</b> plan renews on 2027-01-01.</p>",
    ),
    "fr": (
        "Votre offre Pro & Co, {r}",
        "Renouvelée le 2027-01-01.",
        "<p>Votre offre <b>Pro &amp; Co</b> est renouvelée le 2027-01-01.</p>",
    ),
    "pt-BR": ("Seu plano Pro & Co, {r}", "Renova em 2027-01-01.", None),
}


@pytest.fixture
def zs(redis_url: str, prefix: str, clock: ManualClock) -> Iterator[Scheduler]:
    core = Core(Keyspace(prefix, partitions=4), retry=RetryPolicy(delays_ms=(100, 100, 100)), clock=clock)
    scheduler = Scheduler(redis.Redis.from_url(redis_url), core=core)
    yield scheduler
    scheduler.close()


def deliver_all(zs: Scheduler, mail_port: int, sms_url: str, expected: int) -> None:
    """Real worker rounds over email and SMS until ``expected`` notifications are sent (bounded)."""

    async def go() -> None:
        kwargs = zs.redis.connection_pool.connection_kwargs
        connection = aioredis.Redis(
            host=kwargs["host"], port=kwargs["port"], db=kwargs.get("db", 0), password=kwargs.get("password")
        )
        scheduler = AsyncScheduler(connection, core=zs.core)
        email = EmailChannel(
            connection, zs.core.keys, host="127.0.0.1", port=mail_port, from_address="z@example.com", starttls=False
        )
        sms = SmsChannel(connection, zs.core.keys, TwilioMessages(SID, TOKEN, "+15005550006", base_url=sms_url))
        router = Router({"email": email, "sms": sms}, default=("email",))
        worker = Worker(scheduler, router)
        try:
            for _ in range(50):
                await worker.tick()
                if worker.delivered >= expected:
                    break
        finally:
            await router.aclose()
            await scheduler.close()
        assert worker.delivered == expected

    asyncio.run(go())


def test_one_template_to_100_recipients_in_their_locales(zs: Scheduler, clock: ManualClock) -> None:
    zs.put_template("renewal", TEMPLATE)
    people = [f"r{i:03d}" for i in range(100)]
    locale = {who: LOCALES[i % len(LOCALES)] for i, who in enumerate(people)}
    phones = {who: f"+1415555{i:04d}" for i, who in enumerate(people) if i % 3 == 0}
    for who in people:
        zs.set_contact(who, email=f"{who}@example.com", locale=locale[who], phone=phones.get(who))
    texting = [who for who in people if who in phones]
    mailing = [who for who in people if who not in phones]
    first = zs.schedule_template(texting, "renewal", CONTEXT, delay=1, channels=["email", "sms"])
    second = zs.schedule_template(mailing, "renewal", CONTEXT, delay=1, channels=["email"])
    assert first.count + second.count == 100
    clock.advance(2000)
    with MailServer() as mail, SmsProvider() as provider:
        deliver_all(zs, mail.port, provider.url, 100)
        for who in people:
            subject, text, html = EXPECTED.get(locale[who] or "en", EXPECTED["en"])
            (got,) = mail.to(f"{who}@example.com")
            assert got["Subject"] == subject.format(r=who), who
            if html is None:
                assert got.get_content_type() == "text/plain", who
                body = got.get_content()
            else:
                assert got.get_content_type() == "multipart/alternative", who
                plain, rich = got.iter_parts()
                assert rich.get_content().strip() == html, who
                body = plain.get_content()
            assert body.replace("\r\n", "\n") == f"{subject.format(r=who)}\n\n{text}\n", who
        sent_sms = {form["To"]: form["Body"] for form in provider.accepted}
        assert set(sent_sms) == set(phones.values())
        for who, phone in phones.items():
            subject, text, _ = EXPECTED.get(locale[who] or "en", EXPECTED["en"])
            assert sent_sms[phone] == f"{subject.format(r=who)}\n{text}", who
    statuses = {zs.status(i).scheduled_status for i in [*first.notification_ids, *second.notification_ids]}
    assert statuses == {"sent"}
    assert zs.delete_template("renewal") == 1  # nothing pending uses it any more
