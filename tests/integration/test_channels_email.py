"""The email channel against a real SMTP server (aiosmtpd on 127.0.0.1), driven by a real worker delivering real
scheduled notifications: what arrives, one connection per batch, 4xx and connection errors retried, 5xx and a
missing address failed at once with the reply code, a server that hangs, login, and the settings wiring."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.conftest import ManualClock
from tests.integration.http_support import TestClient, Tokens, future, schedule_body, tokens  # noqa: F401
from tests.integration.mailserver import MailServer
from zsched import AsyncScheduler, Scheduler
from zsched.delivery import Delivery, EmailChannel, InboxDelivery, Router, Worker, build_router, enabled_channels
from zsched.engine import list_dead
from zsched.errors import ConfigError
from zsched.settings import Settings
from zsched.web.app import create_app

FROM = "zsched@notify.example"


@pytest.fixture
def mail() -> Iterator[MailServer]:
    with MailServer() as server:
        yield server


def send_due(zs: Scheduler, port: int, *, websocket: bool = False, **options: Any) -> Worker:
    """One real worker round over email (and the websocket's inbox when asked), the channel on the worker's own
    connection (as the wiring does)."""

    async def go() -> Worker:
        kwargs = zs.redis.connection_pool.connection_kwargs
        connection = aioredis.Redis(
            host=kwargs["host"], port=kwargs["port"], db=kwargs.get("db", 0), password=kwargs.get("password")
        )
        scheduler = AsyncScheduler(connection, core=zs.core)
        channel = EmailChannel(
            connection,
            zs.core.keys,
            host="127.0.0.1",
            port=port,
            from_address=FROM,
            **{"timeout_s": 5.0, "starttls": False, **options},
        )
        channels: dict[str, Delivery] = {"email": channel}
        if websocket:
            channels["websocket"] = InboxDelivery(connection, zs.core.keys, clock=zs.core.clock)
        worker = Worker(scheduler, Router(channels, default=("email",)))
        try:
            await worker.tick()
        finally:
            await scheduler.close()
        return worker

    return asyncio.run(go())


def test_a_due_notification_arrives_as_a_text_email(pinned: Scheduler, mail: MailServer) -> None:
    pinned.set_contact("alice", email="alice@example.com")
    title, message = "Réunion à 10 h ✓", "Salle B2\nbring the slides"
    (nid,) = pinned.schedule(["alice"], title, message, delay=0).notification_ids
    send_due(pinned, mail.port)
    n = pinned.status(nid)
    assert (n.scheduled_status, n.attempts, n.last_error) == ("sent", 1, None)
    (got,) = mail.to("alice@example.com")
    assert got["From"] == FROM and got["Subject"] == title
    assert got["Message-ID"] == f"<zsched.{nid}@notify.example>" and got["X-Zsched-Id"] == str(nid)
    assert not got.is_multipart() and got.get_content_type() == "text/plain"
    assert got.get_content().replace("\r\n", "\n") == f"{title}\n\n{message}\n"  # CRLF on the wire


def test_a_title_with_line_breaks_is_one_subject_line(pinned: Scheduler, mail: MailServer) -> None:
    pinned.set_contact("alice", email="alice@example.com")
    (nid,) = pinned.schedule(["alice"], "Hi\r\nBcc: evil@example.com", "...", delay=0).notification_ids
    send_due(pinned, mail.port)
    assert pinned.status(nid).scheduled_status == "sent"
    (got,) = mail.messages
    assert got["Subject"] == "Hi Bcc: evil@example.com" and got["Bcc"] is None


def test_a_batch_goes_over_one_connection(pinned: Scheduler, mail: MailServer) -> None:
    people = [f"user{i}" for i in range(12)]
    for p in people:
        pinned.set_contact(p, email=f"{p}@example.com")
    ids = pinned.schedule(people, "Batch", "one connection", delay=0).notification_ids
    send_due(pinned, mail.port)
    assert {pinned.status(i).scheduled_status for i in ids} == {"sent"}
    assert sorted(m["To"] for m in mail.messages) == sorted(f"{p}@example.com" for p in people)
    assert len(set(mail.peers)) == 1, f"{len(set(mail.peers))} connections for one batch"


def test_4xx_is_retried_with_backoff_then_sent(pinned: Scheduler, clock: ManualClock, mail: MailServer) -> None:
    pinned.set_contact("bob", email="bob@example.com")
    mail.rcpt["bob@example.com"] = ["451 4.3.0 mailbox busy, try later"]
    (nid,) = pinned.schedule(["bob"], "Retry", "me", delay=0).notification_ids
    send_due(pinned, mail.port)
    n = pinned.status(nid)
    assert (n.scheduled_status, n.attempts) == ("pending", 1)
    assert n.last_error is not None and "deferred the message with 451 at RCPT" in n.last_error
    assert n.scheduled_at.timestamp() * 1000 >= clock.ms + 50  # the retry policy's first backoff
    send_due(pinned, mail.port)  # not due yet: nothing happens
    assert pinned.status(nid).attempts == 1 and mail.messages == []
    clock.advance(60)
    send_due(pinned, mail.port)
    assert pinned.status(nid).scheduled_status == "sent" and len(mail.to("bob@example.com")) == 1


@pytest.mark.parametrize(("stage", "reply"), [("RCPT", "550 5.1.1 <x>: no such user"), ("DATA", "554 5.7.1 spam")])
def test_5xx_fails_at_once_with_the_reply_code(pinned: Scheduler, mail: MailServer, stage: str, reply: str) -> None:
    pinned.set_contact("carol", email="carol@example.com")
    (mail.rcpt if stage == "RCPT" else mail.data)["carol@example.com"] = [reply, reply, reply, reply]
    (nid,) = pinned.schedule(["carol"], "Never", "arrives", delay=0).notification_ids
    send_due(pinned, mail.port)
    n = pinned.status(nid)
    code = reply.split()[0]
    assert (n.scheduled_status, n.attempts) == ("failed", 1)  # no retry: 3 were left
    assert (
        n.last_error
        == f"EmailRejectedError: SMTP server 127.0.0.1:{mail.port} refused the message with {code} at {stage}"
    )
    assert n.last_error_detail is not None and reply.split(maxsplit=1)[1] in n.last_error_detail  # admins only
    assert [d.id for d in pinned.run(list_dead(pinned.core))] == [nid]
    assert len(mail.refused) == 1 and mail.messages == []


def test_no_address_fails_at_once_saying_so(pinned: Scheduler, mail: MailServer) -> None:
    (nid,) = pinned.schedule(["dave"], "Nowhere", "to go", delay=0).notification_ids
    send_due(pinned, mail.port)
    n = pinned.status(nid)
    assert (n.scheduled_status, n.attempts) == ("failed", 1)
    assert "recipient dave has no email address in their contact data" in (n.last_error or "")


def test_with_another_channel_a_permanent_failure_still_fails_at_once(pinned: Scheduler, mail: MailServer) -> None:
    """websocket + email for a recipient with no address: the inbox gets it once, and the notification fails at
    once, showing which channel delivered and which did not."""
    (nid,) = pinned.schedule(["kim"], "Both", "ways", delay=0, channels=["websocket", "email"]).notification_ids
    send_due(pinned, mail.port, websocket=True)
    n = pinned.status(nid)
    assert (n.scheduled_status, n.attempts, n.done) == ("failed", 1, ["websocket"])
    assert "no email address" in n.channel_errors["email"]
    assert pinned.redis.xlen(pinned.core.keys.for_recipient("kim").inbox("kim")) == 1


def test_one_batch_mixing_every_outcome(pinned: Scheduler, mail: MailServer) -> None:
    for who in ("ok", "busy", "gone"):
        pinned.set_contact(who, email=f"{who}@example.com")
    mail.rcpt["busy@example.com"] = ["421 4.7.0 try again later"]
    mail.rcpt["gone@example.com"] = ["553 5.1.3 bad mailbox"]
    ids = dict(
        zip(
            ["ok", "busy", "gone", "nobody"],
            pinned.schedule(["ok", "busy", "gone", "nobody"], "Mixed", "batch", delay=0).notification_ids,
            strict=True,
        )
    )
    send_due(pinned, mail.port)
    status = {who: pinned.status(i).scheduled_status for who, i in ids.items()}
    assert status == {"ok": "sent", "busy": "pending", "gone": "failed", "nobody": "failed"}
    assert [m["To"] for m in mail.messages] == ["ok@example.com"]


def test_a_server_that_is_down_is_retried_then_reached(pinned: Scheduler, clock: ManualClock, mail: MailServer) -> None:
    pinned.set_contact("erin", email="erin@example.com")
    (nid,) = pinned.schedule(["erin"], "Later", "...", delay=0).notification_ids
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = int(s.getsockname()[1])
    send_due(pinned, dead)
    n = pinned.status(nid)
    assert (n.scheduled_status, n.attempts) == ("pending", 1)
    assert n.last_error is not None and f"SMTP server 127.0.0.1:{dead} could not be reached" in n.last_error
    clock.advance(60)
    send_due(pinned, mail.port)
    assert pinned.status(nid).scheduled_status == "sent" and len(mail.messages) == 1


def test_a_server_that_hangs_times_out_and_is_retried(pinned: Scheduler) -> None:
    """Each message waits at most the timeout; after a second lost connection the rest of the batch is not tried
    (it is retried later), so a hung server holds a batch for two timeouts, not one per message."""
    people = ["frank", "gus", "hana", "ines"]
    for who in people:
        pinned.set_contact(who, email=f"{who}@example.com")
    ids = pinned.schedule(people, "Slow", "...", delay=0).notification_ids
    with MailServer(slow_s=3.0) as slow:
        started = time.monotonic()
        send_due(pinned, slow.port, timeout_s=0.5)
        took = time.monotonic() - started
        tried = slow.data_started
    errors = [pinned.status(i).last_error or "" for i in ids]
    assert [pinned.status(i).scheduled_status for i in ids] == ["pending"] * 4 and took < 3.0
    assert tried == 2
    assert all(f"SMTP server 127.0.0.1:{slow.port} did not answer within 0.5 s" in e for e in errors[:2]), errors
    assert all("lost 2 connections in one batch; retrying" in e for e in errors[2:]), errors


def test_login_with_the_configured_credentials(pinned: Scheduler, clock: ManualClock) -> None:
    pinned.set_contact("gina", email="gina@example.com")
    (nid,) = pinned.schedule(["gina"], "Auth", "...", delay=0).notification_ids
    with MailServer(login=("zsched", "s3cret")) as server:
        send_due(pinned, server.port, username="zsched", password="wrong")
        n = pinned.status(nid)
        assert (n.scheduled_status, n.attempts) == ("pending", 1)  # the session, not the message: retried
        assert "refused the session with 535" in (n.last_error or "")
        clock.advance(60)
        send_due(pinned, server.port, username="zsched", password="s3cret")
        assert pinned.status(nid).scheduled_status == "sent"
        assert server.logins == 1 and len(server.messages) == 1


def test_starttls_upgrades_before_sending(pinned: Scheduler, clock: ManualClock, tmp_path: Path) -> None:
    pinned.set_contact("hal", email="hal@example.com")
    (nid,) = pinned.schedule(["hal"], "Secret", "over TLS", delay=0).notification_ids
    cert, key = MailServer.self_signed(tmp_path)
    with MailServer(tls=(cert, key)) as server:
        send_due(pinned, server.port)  # STARTTLS off: the server refuses mail before it
        n = pinned.status(nid)
        assert (n.scheduled_status, n.attempts) == (
            "pending",
            1,
        ) and "wants STARTTLS or a login before mail (530 at MAIL)" in (n.last_error or "")
        clock.advance(60)
        send_due(pinned, server.port, starttls=True)  # the system's CAs do not know this certificate
        n = pinned.status(nid)
        assert (n.scheduled_status, n.attempts) == ("pending", 2) and "could not be reached" in (n.last_error or "")
        clock.advance(200)
        trusted = ssl.create_default_context(cafile=str(cert))
        send_due(pinned, server.port, starttls=True, tls_context=trusted)
        assert pinned.status(nid).scheduled_status == "sent"
        assert server.encrypted == [True]


def test_starttls_required_but_not_offered_is_retried(pinned: Scheduler, mail: MailServer) -> None:
    pinned.set_contact("ivy", email="ivy@example.com")
    (nid,) = pinned.schedule(["ivy"], "Plain", "server", delay=0).notification_ids
    send_due(pinned, mail.port, starttls=True)
    n = pinned.status(nid)
    assert (n.scheduled_status, n.attempts) == ("pending", 1) and mail.messages == []
    assert "cannot be used as configured: SMTP STARTTLS extension not supported by server; check" in (
        n.last_error or ""
    )


def test_settings_enable_the_channel_and_check_it() -> None:
    unused = aioredis.Redis()  # building channels does no I/O
    assert "email" not in enabled_channels(Settings.of())
    on = Settings.of(smtp_host="127.0.0.1", smtp_from=FROM, smtp_starttls="false", smtp_timeout_s="2s")
    assert "email" in enabled_channels(on) and on.delivery.smtp_starttls is False
    assert on.delivery.smtp_timeout_s == 2.0
    with pytest.raises(ConfigError, match="ZSCHED_SMTP_FROM: the email channel needs a From address"):
        build_router(Settings.of(smtp_host="127.0.0.1"), unused, Settings.of().core().keys)
    with pytest.raises(ConfigError, match="ZSCHED_SMTP_FROM: email must be"):
        build_router(on.replace(smtp_from="not an address"), unused, on.core().keys)
    with pytest.raises(ConfigError, match="go together"):
        build_router(on.replace(smtp_username="u"), unused, on.core().keys)
    assert isinstance(build_router(on, unused, on.core().keys).channels["email"], EmailChannel)


def test_scheduled_over_http_and_sent_by_the_served_worker(
    redis_url: str,
    prefix: str,
    tokens: Tokens,  # noqa: F811
    mail: MailServer,
) -> None:
    """The whole path: the recipient sets their address over HTTP, a service schedules with channels=["email"],
    and the worker `zsched serve` runs (wired from the ZSCHED_SMTP_* settings) sends it."""
    settings = Settings.of(
        redis_url=redis_url,
        prefix=prefix,
        rate_per_s=1000.0,
        rate_burst=1000,
        smtp_host="127.0.0.1",
        smtp_port=mail.port,
        smtp_from=FROM,
        smtp_starttls=False,
        channels=("websocket", "email"),
    )
    with TestClient(create_app(settings, run_worker=True)) as c:
        doc = c.get("/openapi.json").json()["components"]["schemas"]["ScheduleBody"]["properties"]["channels"]
        assert doc["anyOf"][0]["items"]["enum"] == ["websocket", "email"]
        alice = tokens.headers("alice")
        assert c.patch("/api/contacts/", headers=alice, json={"email": "alice@example.com"}).status_code == 200
        body = schedule_body(["alice"], title="Invoice due", channels=["email"], scheduled_at=future(0.2))
        r = c.post("/api/notifications/schedule/", headers=tokens.service(), json=body)
        assert r.status_code == 201, r.text
        (nid,) = r.json()["notification_ids"]
        deadline = time.monotonic() + 15
        while c.get(f"/api/notifications/{nid}/", headers=alice).json()["scheduled_status"] != "sent":
            assert time.monotonic() < deadline, "not sent within 15 s"
            time.sleep(0.05)
    (got,) = mail.messages
    assert got["To"] == "alice@example.com" and got["Subject"] == "Invoice due"
