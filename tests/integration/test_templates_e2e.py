"""End to end: one template, 100 recipients of mixed locales and opt-outs over four partitions, scheduled in two calls
(email and SMS for those with a phone, email alone for the rest), delivered by a real worker to a real SMTP server
(aiosmtpd) and the SMS provider's stand-in, each message rendered in its recipient's locale (the fallback for a
locale with no variant), the HTML part only where the locale's variant has one; the channels a recipient opted out
of for the type are left out, and a notification with none left ends skipped; then the template can be deleted."""

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
OPT_OUTS = {1: ["email:marketing"], 2: ["sms:marketing"], 3: ["*:marketing"], 4: ["sms:alerts"]}  # by i % 10
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
    opted = {who: OPT_OUTS.get(i % 10, []) for i, who in enumerate(people)}
    for who in people:
        zs.set_contact(who, email=f"{who}@example.com", locale=locale[who], phone=phones.get(who), opt_out=opted[who])
    texting = [who for who in people if who in phones]
    mailing = [who for who in people if who not in phones]
    first = zs.schedule_template(texting, "renewal", CONTEXT, channels=["email", "sms"], type="marketing", delay=1)
    second = zs.schedule_template(mailing, "renewal", CONTEXT, channels=["email"], type="marketing", delay=1)
    assert first.count + second.count == 100
    ids = dict(zip([*texting, *mailing], [*first.notification_ids, *second.notification_ids], strict=True))
    # Opted out of email for marketing: those with a phone get the SMS alone, the others nothing; of SMS: those
    # with a phone the email alone; of every channel: nothing; of SMS for another type: everything.
    no_email = {who for who in people if {"email:marketing", "*:marketing"} & set(opted[who])}
    no_sms = {who for who in texting if {"sms:marketing", "*:marketing"} & set(opted[who])}
    skipped = {who for who in people if who in no_email and (who not in phones or who in no_sms)}
    assert (len(skipped), len(no_email), len(set(texting) - no_sms)) == (17, 20, 27)
    clock.advance(2000)
    with MailServer() as mail, SmsProvider() as provider:
        deliver_all(zs, mail.port, provider.url, 100 - len(skipped))
        assert {who for who in people if mail.to(f"{who}@example.com")} == set(people) - no_email
        for who in set(people) - no_email:
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
        assert set(sent_sms) == {phones[who] for who in texting if who not in no_sms} and len(provider.accepted) == 27
        for who, phone in phones.items():
            if who in no_sms:
                continue
            subject, text, _ = EXPECTED.get(locale[who] or "en", EXPECTED["en"])
            assert sent_sms[phone] == f"{subject.format(r=who)}\n{text}", who
    status = {who: zs.status(nid) for who, nid in ids.items()}
    assert {who for who, n in status.items() if n.scheduled_status == "skipped"} == skipped
    assert {who for who, n in status.items() if n.scheduled_status == "sent"} == set(people) - skipped
    for who in skipped:
        channels = "email" if who not in phones else "email and sms"
        assert status[who].last_error == f"{who} opted out of {channels} for type 'marketing'", who
    partial = {who: status[who].opted_out for who in set(texting) - skipped if who in no_email | no_sms}
    assert partial == {
        "r021": ["email"],
        "r051": ["email"],
        "r081": ["email"],
        "r012": ["sms"],
        "r042": ["sms"],
        "r072": ["sms"],
    }
    assert zs.stats().counts["skipped"] == 17 and zs.stats().counts["sent"] == 83
    assert zs.delete_template("renewal") == 1  # nothing pending uses it any more
