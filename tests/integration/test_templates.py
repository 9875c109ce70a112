"""Templates against a real server: versions kept, a context that cannot render refused at schedule time with
nothing written, rendering at send time in the recipient's current locale (text and HTML parts to a real SMTP
server, the websocket's inbox through the worker, never unrendered by the claim), the sandbox, and deletion
refused while anything pending uses the template."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import ManualClock
from tests.helpers import tick
from tests.integration.mailserver import MailServer
from tests.integration.test_channels_email import send_due
from zsched import AsyncScheduler, Scheduler, TemplateInUseError, TemplateNotFoundError, TemplateRenderError
from zsched.errors import FieldError

WELCOME = {
    "en": {
        "title": "Welcome, {{ name }}",
        "message": "Your plan: {{ plan }}.",
        "html": "<p>Welcome, <b>{{ name }}</b></p>",
    },
    "fr": {
        "title": "Bienvenue, {{ name }}",
        "message": "Votre offre : {{ plan }}.",
        "html": "<p>Bienvenue {{ name }}</p>",
    },
    "pt-BR": {"title": "Bem-vindo, {{ name }}", "message": "Seu plano: {{ plan }}."},
}


@pytest.fixture
def mail() -> Iterator[MailServer]:
    with MailServer() as server:
        yield server


def test_versions_are_kept_and_listed(zs: Scheduler) -> None:
    first = zs.put_template("welcome", WELCOME)
    second = zs.put_template("welcome", {"en": {"title": "Hello {{ name }}", "message": "v2"}})
    assert (first.version, second.version) == (1, 2)
    assert zs.template("welcome", 1).variants["fr"].title == "Bienvenue, {{ name }}"
    assert zs.template("welcome").version == 2 and list(zs.template("welcome").variants) == ["en"]
    zs.put_template("alert", {"de": {"title": "Achtung", "message": "!"}}, fallback_locale="de")
    assert [(t.name, t.version) for t in zs.templates()] == [("alert", 1), ("welcome", 2)]
    with pytest.raises(TemplateNotFoundError):
        zs.template("welcome", 3)
    with pytest.raises(TemplateNotFoundError):
        zs.template("nope")


def test_a_template_that_does_not_compile_or_has_no_fallback_is_refused(zs: Scheduler) -> None:
    with pytest.raises(TemplateRenderError, match="does not compile"):
        zs.put_template("bad", {"en": {"title": "{{ name ", "message": "m"}})
    with pytest.raises(FieldError, match="fallback_locale"):
        zs.put_template("bad", {"fr": {"title": "t", "message": "m"}})
    with pytest.raises(FieldError, match="name"):
        zs.put_template("no spaces", {"en": {"title": "t", "message": "m"}})
    assert zs.templates() == []


def test_a_context_that_cannot_render_is_refused_at_schedule_time_with_nothing_written(zs: Scheduler) -> None:
    zs.put_template("welcome", WELCOME)
    with pytest.raises(TemplateRenderError, match="'plan' is undefined") as caught:
        zs.schedule_template(["alice", "bob"], "welcome", {"name": "Alice"}, delay=60)
    assert caught.value.field == "context"
    zs.put_template("sandboxed", {"en": {"title": "{{ ''.__class__.__mro__ }}", "message": "m"}})
    with pytest.raises(TemplateRenderError):
        zs.schedule_template(["alice"], "sandboxed", delay=60)
    with pytest.raises(TemplateNotFoundError):
        zs.schedule_template(["alice"], "missing", delay=60)
    assert zs.stats().counts["pending"] == 0
    assert zs.delete_template("welcome") == 1  # the refused calls left no use behind


def test_preview_renders_a_locale_with_a_context(zs: Scheduler) -> None:
    zs.put_template("welcome", WELCOME)
    got = zs.preview_template("welcome", {"name": "<Ana>", "plan": "pro"}, locale="pt-BR")
    assert (got.locale, got.title, got.message, got.html) == ("pt-BR", "Bem-vindo, <Ana>", "Seu plano: pro.", None)
    en = zs.preview_template("welcome", {"name": "<Ana>", "plan": "pro"}, locale="sv")  # no such variant: fallback
    assert en.locale == "en" and en.html == "<p>Welcome, <b>&lt;Ana&gt;</b></p>"  # autoescaped in HTML only
    assert zs.preview_template("welcome", {"name": "A", "plan": "p"}, locale="fr-CA").locale == "fr"
    with pytest.raises(TemplateRenderError):
        zs.preview_template("welcome", {"name": "A"})


def test_emails_are_rendered_at_send_time_in_the_recipients_current_locale(
    pinned: Scheduler, clock: ManualClock, mail: MailServer
) -> None:
    pinned.put_template("welcome", WELCOME)
    for who, locale in (("ana", "pt-BR"), ("luc", "fr"), ("sam", None)):
        pinned.set_contact(who, email=f"{who}@example.com", locale=locale)
    result = pinned.schedule_template(
        ["ana", "luc", "sam"], "welcome", {"name": "<Kim>", "plan": "pro"}, delay=1, channels=["email"]
    )
    pending = pinned.status(result.notification_ids[0])
    assert pending.template is not None and (pending.template.name, pending.template.version) == ("welcome", 1)
    assert pending.title == "Welcome, <Kim>"  # the preview: the fallback locale, as of schedule time
    pinned.set_contact("luc", locale="pt-PT")  # changed after scheduling: the send uses the new one
    pinned.put_template("welcome", {"en": {"title": "v2 {{ name }}", "message": "v2"}})  # pending keep version 1
    clock.advance(2000)
    send_due(pinned, mail.port)
    assert [pinned.status(i).scheduled_status for i in result.notification_ids] == ["sent"] * 3
    (ana,) = mail.to("ana@example.com")
    assert ana["Subject"] == "Bem-vindo, <Kim>" and not ana.is_multipart()  # pt-BR has no HTML part
    (luc,) = mail.to("luc@example.com")
    assert luc["Subject"] == "Bem-vindo, <Kim>"  # pt-PT: no variant, the same language's pt-BR
    (sam,) = mail.to("sam@example.com")
    assert sam["Subject"] == "Welcome, <Kim>" and sam.get_content_type() == "multipart/alternative"
    text, html = sam.iter_parts()
    assert text.get_content().replace("\r\n", "\n") == "Welcome, <Kim>\n\nYour plan: pro.\n"
    assert html.get_content_type() == "text/html"
    assert html.get_content().strip() == "<p>Welcome, <b>&lt;Kim&gt;</b></p>"


def test_a_websocket_only_templated_notification_is_rendered_by_the_worker(
    pinned: Scheduler, clock: ManualClock
) -> None:
    pinned.put_template("hello", {"en": {"title": "Hi {{ recipient }}", "message": "{{ n }} new"}})
    pinned.set_contact("bob", locale="en-GB")
    (nid,) = pinned.schedule_template(["bob"], "hello", {"n": 3}, delay=1, channels=["websocket"]).notification_ids
    plain = pinned.schedule(["bob"], "plain", "m", delay=1, channels=["websocket"]).notification_ids[0]
    clock.advance(2000)
    worker = tick(pinned)  # the default: the inbox, with the claim delivering what it may
    assert worker.inbox_plan is not None  # the claim delivers plain websocket-only ones itself ...
    assert pinned.status(nid).scheduled_status == "sent" and pinned.status(plain).scheduled_status == "sent"
    page = pinned.inbox("bob")
    by_id = {item.notification["id"]: item.notification for item in page.items}
    assert (by_id[nid]["title"], by_id[nid]["message"]) == ("Hi bob", "3 new")  # ... and never a templated one
    assert by_id[plain]["title"] == "plain"


def test_delete_is_refused_while_a_notification_using_it_is_pending(zs: Scheduler) -> None:
    zs.put_template("welcome", WELCOME)
    context = {"name": "A", "plan": "p"}
    many = zs.schedule_template([f"u{i}" for i in range(30)], "welcome", context, delay=600)
    one = zs.schedule_template(["solo"], "welcome", context, delay=600, version=1)
    with pytest.raises(TemplateInUseError) as caught:
        zs.delete_template("welcome")
    assert caught.value.pending >= 1
    for nid in many.notification_ids:
        zs.cancel(nid)
    with pytest.raises(TemplateInUseError):
        zs.delete_template("welcome")  # the single one is still pending
    zs.cancel(one.notification_ids[0])
    assert zs.delete_template("welcome") == 1
    with pytest.raises(TemplateNotFoundError):
        zs.delete_template("welcome")
    assert zs.templates() == []
    again = zs.put_template("welcome", {"en": {"title": "new", "message": "m"}})
    assert again.version == 2  # a version number is never given twice: a worker's cached version 1 stays right


def test_a_schedule_call_under_way_holds_the_template(zs: Scheduler) -> None:
    zs.put_template("welcome", WELCOME)
    op = zs.core.schedule_template(["a"], "welcome", {"name": "A", "plan": "p"}, delay=60)
    zs._execute(next(op))  # reserved, then the caller stalls before scheduling
    with pytest.raises(TemplateInUseError):
        zs.delete_template("welcome")
    op.close()


async def test_the_async_client_has_the_same_methods(azs: AsyncScheduler) -> None:
    await azs.put_template("t", {"en": {"title": "T {{ x }}", "message": "m"}})
    assert (await azs.preview_template("t", {"x": 1})).title == "T 1"
    result = await azs.schedule_template(["a"], "t", {"x": 2}, delay=60)
    assert (await azs.status(result.notification_ids[0])).title == "T 2"
    assert [t.name for t in await azs.templates()] == ["t"]
    with pytest.raises(TemplateInUseError):
        await azs.delete_template("t")


def test_a_template_that_cannot_render_when_sent_fails_for_good_saying_why(
    pinned: Scheduler, clock: ManualClock, redis_url: str
) -> None:
    pinned.put_template("hello", {"en": {"title": "Hi", "message": "{{ n }}"}})
    (nid,) = pinned.schedule_template(["bob"], "hello", {"n": 1}, delay=1).notification_ids
    pinned.redis.delete(pinned.core.keys.template_versions("hello"))  # what no delete would do: it is pending
    clock.advance(2000)
    tick(pinned)
    n = pinned.status(nid)
    assert n.scheduled_status == "failed" and n.attempts == 1
    assert n.last_error is not None and "template 'hello' version 1 no longer exists" in n.last_error


def test_each_templated_call_prunes_uses_due_long_ago(pinned: Scheduler, clock: ManualClock, redis_url: str) -> None:
    pinned.put_template("hello", {"en": {"title": "Hi", "message": "{{ n }}"}})
    uses = pinned.core.keys.template_uses("hello")
    done = pinned.schedule_template([f"u{i}" for i in range(5)], "hello", {"n": 1}, delay=1)
    waiting = pinned.schedule_template(["late"], "hello", {"n": 2}, delay=1)
    for nid in done.notification_ids:
        pinned.cancel(nid)
    assert pinned.redis.zcard(uses) == 2
    clock.advance(2 * 3600 * 1000)  # both due two hours ago; one call's notifications all left pending
    pinned.schedule_template(["new"], "hello", {"n": 3}, delay=60)
    members = {m.decode() for m in pinned.redis.zrange(uses, 0, -1)}
    assert f"{done.notification_ids[0]}+5" not in members  # all cancelled: pruned
    assert f"{waiting.notification_ids[0]}+1" in members and len(members) == 2  # still pending: kept; and the new
    assert pinned.redis.zscore(uses, f"{waiting.notification_ids[0]}+1") == clock()  # looked at again an hour on
