"""Opt-outs on a real server: set, changed and erased with the contact data (library, HTTP API, CLI), and respected
when each notification is sent: through email, SMS, webhook and the websocket (including the claim script's own
websocket path), the rest of a notification's channels still delivered, one with none left ending ``skipped`` with
the reason, and a change made after scheduling applying at send time."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.conftest import ManualClock
from tests.helpers import Recorder, tick
from tests.integration.hookserver import HookServer
from tests.integration.http_support import TestClient, Tokens, client, settings, tokens  # noqa: F401
from tests.integration.mailserver import MailServer
from tests.integration.smsprovider import SID, TOKEN, SmsProvider
from zsched import AsyncScheduler, Scheduler
from zsched.delivery import (
    CallableDelivery,
    Delivery,
    EmailChannel,
    InboxDelivery,
    Router,
    SmsChannel,
    TwilioMessages,
    WebhookChannel,
    Worker,
)
from zsched.engine.leases import InboxPlan
from zsched.engine.optouts import MAX_OPT_OUTS
from zsched.engine.replies import ClaimReply
from zsched.errors import FieldError
from zsched.web.auth import SCOPE_CONTACTS_WRITE, SCOPE_PREFERENCES_WRITE, SCOPE_SCHEDULE_ANY

ZSCHED = [sys.executable, "-m", "zsched.cli"]


def _run_worker(zs: Scheduler, make: Callable[[aioredis.Redis], Delivery], rounds: int = 1) -> Worker:
    """Real worker rounds with ``zs``'s core over a fresh asyncio connection, through the delivery ``make`` builds."""

    async def go() -> Worker:
        kwargs = zs.redis.connection_pool.connection_kwargs
        connection = aioredis.Redis(
            host=kwargs["host"], port=kwargs["port"], db=kwargs.get("db", 0), password=kwargs.get("password")
        )
        scheduler = AsyncScheduler(connection, core=zs.core)
        delivery = make(connection)
        worker = Worker(scheduler, delivery)
        try:
            for _ in range(rounds):
                await worker.tick()
        finally:
            if isinstance(delivery, Router):
                await delivery.aclose()
            await scheduler.close()
        return worker

    return asyncio.run(go())


def _statuses(zs: Scheduler, ids: list[int]) -> list[str]:
    return [zs.status(i).scheduled_status for i in ids]


# -- setting them -----------------------------------------------------------------------------------------------


def test_opt_outs_are_added_removed_replaced_and_shown(zs: Scheduler) -> None:
    p = zs.core.keys.for_recipient("alice")
    c = zs.set_contact("alice", email="alice@example.com", opt_out=["sms:marketing", "email:*", "sms:marketing"])
    assert c.opt_outs == {"sms": ["marketing"], "email": ["*"]} and c.email == "alice@example.com"
    assert zs.contact("alice") == c
    c = zs.set_contact("alice", opt_out=["sms:digest"], opt_in=["email:*", "webhook:never-set"])
    assert c.opt_outs == {"sms": ["marketing", "digest"]}, "a channel with no type left goes"
    assert zs.redis.sismember(p.websocket_opt_outs, "alice") == 0
    c = zs.set_contact("alice", opt_outs={"websocket": ["alert"], "email": []})
    assert c.opt_outs == {"websocket": ["alert"]}, "replaced whole; an empty list is no opt-out"
    assert zs.redis.sismember(p.websocket_opt_outs, "alice") == 1, "the claim leaves alice's websocket ones to Python"
    c = zs.set_contact("alice", opt_outs=None, opt_out=["*:marketing"])
    assert c.opt_outs == {"*": ["marketing"]} and zs.redis.sismember(p.websocket_opt_outs, "alice") == 1
    c = zs.set_contact("alice", opt_in=["*:marketing"])
    assert c.opt_outs == {} and zs.redis.sismember(p.websocket_opt_outs, "alice") == 0
    assert zs.set_contact("alice", email=None).opt_outs == {}
    assert zs.redis.hexists(p.contacts, "alice") == 0, "nothing left: no entry at all"


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"opt_out": ["sms"]}, "opt_out", "'channel:type' entries"),
        ({"opt_out": ["sms marketing"]}, "opt_out", "'channel:type' entries"),
        ({"opt_out": ["sms:"]}, "opt_out", "type cannot be empty"),
        ({"opt_out": ["s ms:marketing"]}, "opt_out", "letters, digits"),
        ({"opt_out": ["sms:" + "x" * 65]}, "opt_out", "at most 64"),
        ({"opt_in": [5]}, "opt_in", "'channel:type' entries"),
        ({"opt_outs": {"sms": "marketing"}}, "opt_outs", "must be a list of types"),
        ({"opt_outs": ["sms:marketing"]}, "opt_outs", "must be an object"),
        ({"opt_outs": {"sms/x": ["marketing"]}}, "opt_outs", "channel name"),
        ({"opt_out": [f"sms:t{i}" for i in range(MAX_OPT_OUTS + 1)]}, "opt_out", f"at most {MAX_OPT_OUTS}"),
    ],
)
def test_bad_opt_outs_are_refused_and_write_nothing(
    zs: Scheduler, change: dict[str, object], field: str, says: str
) -> None:
    before = zs.set_contact("bob", email="bob@example.com", opt_out=["sms:marketing"])
    with pytest.raises(FieldError, match=says) as refused:
        zs.set_contact("bob", locale="de", **change)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert zs.contact("bob") == before


def test_opt_outs_are_capped_in_the_script_too(zs: Scheduler) -> None:
    zs.set_contact("cap", opt_out=[f"sms:t{i}" for i in range(MAX_OPT_OUTS)])
    before = zs.contact("cap")
    with pytest.raises(FieldError, match=f"at most {MAX_OPT_OUTS}.*would make {MAX_OPT_OUTS + 1}"):
        zs.set_contact("cap", opt_out=["email:one-more"], locale="en")
    assert zs.contact("cap") == before, "nothing written"
    assert zs.set_contact("cap", opt_out=["sms:t0"]).opt_outs == before.opt_outs, "one already there adds nothing"


async def test_the_async_library_does_the_same(azs: AsyncScheduler) -> None:
    c = await azs.set_contact("frank", opt_out=["email:marketing"])
    assert c.opt_outs == {"email": ["marketing"]} and (await azs.contact("frank")) == c
    assert (await azs.set_contact("frank", opt_in=["email:marketing"])).opt_outs == {}


def test_erasure_removes_opt_outs(zs: Scheduler) -> None:
    p = zs.core.keys.for_recipient("erin")
    zs.set_contact("erin", opt_out=["websocket:*", "sms:marketing"])
    assert zs.redis.sismember(p.websocket_opt_outs, "erin") == 1
    assert zs.erase_recipient("erin").contact_removed
    assert zs.contact("erin").opt_outs == {} and zs.redis.sismember(p.websocket_opt_outs, "erin") == 0


# -- at send time -----------------------------------------------------------------------------------------------


def test_each_channel_respects_opt_outs_and_the_rest_is_delivered(pinned: Scheduler, clock: ManualClock) -> None:
    """Email, SMS and webhook for real, and the websocket's inbox: each opted-out channel is left out, the others
    deliver, and the record says which were skipped."""
    people = ["all", "no-mail", "no-sms", "no-hook", "no-socket", "none-left", "other-type"]
    for who in people:
        pinned.set_contact(who, email=f"{who}@example.com", phone=f"+1415555{people.index(who):04d}")
    pinned.set_contact("no-mail", opt_out=["email:marketing"])
    pinned.set_contact("no-sms", opt_out=["sms:*"])
    pinned.set_contact("no-hook", opt_out=["webhook:marketing"])
    pinned.set_contact("no-socket", opt_out=["websocket:marketing"])
    pinned.set_contact("none-left", opt_out=["*:marketing"])
    pinned.set_contact("other-type", opt_out=["email:alert", "sms:alert", "webhook:alert", "websocket:alert"])
    channels = ["email", "sms", "webhook", "websocket"]
    ids = pinned.schedule(people, "Sale", "50% off", delay=0, type="marketing", channels=channels).notification_ids
    by_who = dict(zip(people, ids, strict=True))

    with MailServer() as mail, SmsProvider() as provider, HookServer() as hook:

        def make(connection: aioredis.Redis) -> Delivery:
            keys = pinned.core.keys
            twilio = TwilioMessages(SID, TOKEN, "+15005550006", base_url=provider.url)
            return Router(
                {
                    "email": EmailChannel(
                        connection, keys, host="127.0.0.1", port=mail.port, from_address="z@example.com", starttls=False
                    ),
                    "sms": SmsChannel(connection, keys, twilio),
                    "webhook": WebhookChannel(hook.url, "s" * 32),
                    "websocket": InboxDelivery(connection, keys, clock=clock),
                },
                default=("websocket",),
            )

        worker = _run_worker(pinned, make)
        assert worker.delivered == len(people) - 1
        mailed = {who for who in people if mail.to(f"{who}@example.com")}
        texted = {form["To"] for form in provider.accepted}
        hooked = {json.loads(body)["recipient"] for _, body in hook.requests}
    p = pinned.core.keys.partitions[0]
    inboxed = {who for who in people if pinned.redis.exists(p.inbox(who))}
    everyone_but = {
        "email": {"no-mail", "none-left"},
        "webhook": {"no-hook", "none-left"},
        "websocket": {"no-socket", "none-left"},
    }
    assert mailed == set(people) - everyone_but["email"]
    assert texted == {f"+1415555{people.index(w):04d}" for w in people if w not in {"no-sms", "none-left"}}
    assert hooked == set(people) - everyone_but["webhook"]
    assert inboxed == set(people) - everyone_but["websocket"]

    for who, skipped in (("no-mail", "email"), ("no-sms", "sms"), ("no-hook", "webhook"), ("no-socket", "websocket")):
        n = pinned.status(by_who[who])
        assert (n.scheduled_status, n.opted_out) == ("sent", [skipped]), who
    assert pinned.status(by_who["other-type"]).opted_out == [], "opt-outs of another type change nothing"
    gone = pinned.status(by_who["none-left"])
    assert gone.scheduled_status == "skipped" and gone.skipped_at is not None and gone.attempts == 1
    assert gone.last_error == "none-left opted out of email, sms, webhook and websocket for type 'marketing'"
    assert gone.opted_out == channels
    stats = pinned.stats()
    assert (stats.counts["skipped"], stats.totals["skipped"], stats.counts["processing"]) == (1, 1, 0)
    assert pinned.redis.zscore(p.skipped, by_who["none-left"]) == clock.ms + pinned.core.retention.cancelled_ms
    assert [n.id for n in pinned.list_for("none-left", status="skipped").items] == [by_who["none-left"]]


def test_the_claims_websocket_path_leaves_opted_out_recipients_to_the_worker(
    pinned: Scheduler, clock: ManualClock
) -> None:
    """Websocket-only notifications are delivered inside the claim script, except to a recipient with a websocket
    opt-out, whose notification the worker gets: sent if the opt-out is of another type, skipped if of this one.
    A many-recipient call and single records both."""
    pinned.set_contact("muted", opt_out=["websocket:marketing"])
    pinned.set_contact("elsewhere", opt_out=["websocket:alert"])
    pinned.set_contact("sms-only", opt_out=["sms:marketing"])  # no websocket opt-out: stays on the fast path
    people = ["a", "muted", "b", "elsewhere", "sms-only", "c"]
    call = pinned.schedule(people, "Sale", "m", delay=0, type="marketing").notification_ids
    (single,) = pinned.schedule(["muted"], "Sale", "m", delay=0, type="marketing").notification_ids
    clock.advance(10)
    worker = tick(pinned)
    assert worker.delivered == len(people) - 1
    assert _statuses(pinned, [*call, single]) == ["sent", "skipped", "sent", "sent", "sent", "sent", "skipped"]
    p = pinned.core.keys.partitions[0]
    assert pinned.redis.exists(p.inbox("muted")) == 0 and pinned.redis.exists(p.inbox("elsewhere")) == 1


def test_only_recipients_with_a_websocket_opt_out_leave_the_claims_fast_path(
    pinned: Scheduler, clock: ManualClock
) -> None:
    pinned.set_contact("muted", opt_out=["websocket:marketing"])
    pinned.set_contact("everywhere", opt_out=["*:alert"])
    pinned.set_contact("sms-only", opt_out=["sms:marketing"])
    people = ["a", "muted", "everywhere", "sms-only"]
    call = pinned.schedule(people, "Sale", "m", delay=0, type="marketing").notification_ids
    single = [pinned.schedule([who], "Sale", "m", delay=0.001).notification_ids[0] for who in people]
    clock.advance(10)
    p = pinned.core.keys.partitions[0]
    claimed = pinned.run(pinned.core.claim(p, 20, 60_000, InboxPlan(maxlen=100, keep_ms=60_000)))
    by_python = [call[1], call[2], single[1], single[2]]
    assert sorted(n.id for n in claimed.notifications) == sorted(by_python)
    assert sorted(i for i, _, _ in claimed.sent) == sorted(set(call + single) - set(by_python))
    pinned.set_contact("muted", opt_outs=None)
    pinned.set_contact("everywhere", opt_outs=None)
    assert pinned.redis.scard(p.websocket_opt_outs) == 0, "no one's left: the claim asks nothing per notification"


def test_a_claim_ahead_stops_at_an_opted_out_recipient(pinned: Scheduler, clock: ManualClock) -> None:
    """A claim sent ahead only delivers: it halts at the first recipient the worker must have, leaving the call due
    from there, and the next claim goes on from that recipient."""
    pinned.set_contact("m", opt_out=["websocket:*"])
    ids = pinned.schedule(["a", "b", "m", "c"], "Ahead", "x", delay=0).notification_ids
    clock.advance(10)
    core, p = pinned.core, pinned.core.keys.partitions[0]
    plan = InboxPlan(maxlen=100, keep_ms=60_000)
    steps = next(core.claim(p, 2, 60_000, plan, ahead=1))
    ahead = steps[1]
    reply = ClaimReply.read(pinned.scripts["claim"](keys=ahead.keys, args=ahead.args))
    assert [int(i) for i, _, _ in reply.sent] == ids[:2] and reply.claimed == []
    claimed = pinned.run(core.claim(p, 2, 60_000, plan))
    assert [n.id for n in claimed.notifications] == [ids[2]] and [i for i, _, _ in claimed.sent] == [ids[3]]
    assert pinned.stats().counts["pending"] == 0


def test_all_opted_out_ends_skipped_and_partial_keeps_the_rest(pinned: Scheduler, clock: ManualClock) -> None:
    got = {"email": Recorder(), "sms": Recorder()}
    pinned.set_contact("x", opt_out=["sms:promo"])
    pinned.set_contact("y", opt_out=["sms:promo", "email:promo"])
    both = pinned.schedule(["x", "y"], "Promo", "m", delay=0, type="promo", channels=["email", "sms"])
    default = pinned.schedule(["x", "y"], "Promo", "m", delay=0, type="promo")  # the default channels: both
    clock.advance(10)
    worker = _run_worker(pinned, lambda _: Router(dict(got), default=("email", "sms")))
    assert worker.delivered == 2
    assert _statuses(pinned, [*both.notification_ids, *default.notification_ids]) == [
        "sent",
        "skipped",
        "sent",
        "skipped",
    ]
    assert sorted(n.id for n in got["email"].delivered) == [both.notification_ids[0], default.notification_ids[0]]
    assert got["sms"].delivered == []
    assert pinned.status(default.notification_ids[1]).last_error == "y opted out of email and sms for type 'promo'"


def test_an_opt_out_set_after_scheduling_applies_at_send_time(pinned: Scheduler, clock: ManualClock) -> None:
    sent: list[int] = []
    ids = pinned.schedule(["late", "keeps"], "Later", "m", delay=60, type="news", channels=["pager"]).notification_ids
    pinned.set_contact("late", opt_out=["pager:news"])
    pinned.set_contact("keeps", opt_out=["pager:news"])
    pinned.set_contact("keeps", opt_in=["pager:news"])  # changed its mind before it was due
    clock.advance(61_000)
    _run_worker(pinned, lambda _: Router({"pager": CallableDelivery(lambda n: sent.append(n.id))}, default=("pager",)))
    assert _statuses(pinned, ids) == ["skipped", "sent"] and sent == [ids[1]]


def test_a_retry_applies_the_opt_outs_of_its_own_time(pinned: Scheduler, clock: ManualClock) -> None:
    """Delivered by email on attempt 1, its SMS failed; before the retry the recipient opts out of SMS: the retry
    sends nothing more, and the notification ends sent (its email went), with sms skipped."""
    sms = Recorder()
    email = Recorder()
    (nid,) = pinned.schedule(["r"], "T", "m", delay=0, type="news", channels=["email", "sms"]).notification_ids
    sms.fail.add(nid)
    clock.advance(10)
    _run_worker(pinned, lambda _: Router({"email": email, "sms": sms}, default=("email",)))
    assert pinned.status(nid).scheduled_status == "pending" and pinned.status(nid).done == ["email"]
    pinned.set_contact("r", opt_out=["sms:news"])
    clock.advance(60_000)
    _run_worker(pinned, lambda _: Router({"email": email, "sms": sms}, default=("email",)))
    n = pinned.status(nid)
    assert (n.scheduled_status, n.opted_out, len(email.delivered), sms.delivered) == ("sent", ["sms"], 1, [])


def test_an_opt_in_before_the_retry_sends_the_rest_and_clears_what_was_skipped(
    pinned: Scheduler, clock: ManualClock
) -> None:
    email, sms = Recorder(), Recorder()
    pinned.set_contact("s", opt_out=["sms:news"])
    (nid,) = pinned.schedule(["s"], "T", "m", delay=0, type="news", channels=["email", "sms"]).notification_ids
    email.fail.add(nid)
    clock.advance(10)
    _run_worker(pinned, lambda _: Router({"email": email, "sms": sms}, default=("email",)))
    assert (pinned.status(nid).scheduled_status, pinned.status(nid).opted_out) == ("pending", ["sms"])
    pinned.set_contact("s", opt_in=["sms:news"])
    email.fail.clear()
    clock.advance(60_000)
    _run_worker(pinned, lambda _: Router({"email": email, "sms": sms}, default=("email",)))
    n = pinned.status(nid)
    assert (n.scheduled_status, n.opted_out, len(email.delivered), len(sms.delivered)) == ("sent", [], 1, 1)


def test_a_worker_without_a_router_treats_everything_as_the_websocket(pinned: Scheduler, clock: ManualClock) -> None:
    pinned.set_contact("q", opt_out=["websocket:news"])
    recorder = Recorder()
    ids = pinned.schedule(["q", "r"], "T", "m", delay=0, type="news").notification_ids
    clock.advance(10)
    tick(pinned, recorder)
    assert _statuses(pinned, ids) == ["skipped", "sent"] and [n.id for n in recorder.delivered] == [ids[1]]


class ContactReads(aioredis.Redis):
    """An asyncio connection that counts the HMGETs of contact data it sends, alone or in a pipeline."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.reads = 0

    def _note(self, args: tuple[Any, ...]) -> None:
        if args[0] == "HMGET" and str(args[1]).endswith(":contacts"):
            self.reads += 1

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self._note(args)
        return await super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        queue = pipe.execute_command

        def execute_command(*args: Any, **options: Any) -> Any:
            self._note(args)
            return queue(*args, **options)

        pipe.execute_command = execute_command
        return pipe


def test_one_contact_read_per_batch_serves_opt_outs_rendering_email_and_sms(
    pinned: Scheduler, clock: ManualClock
) -> None:
    pinned.put_template("t", {"en": {"title": "Hi {{ recipient }}", "message": "m"}})
    people = ["a", "b", "c"]
    for i, who in enumerate(people):
        pinned.set_contact(who, email=f"{who}@example.com", phone=f"+1415555000{i}", locale="en")
    pinned.set_contact("b", opt_out=["sms:news"])
    ids = pinned.schedule_template(people, "t", {}, delay=0, type="news", channels=["email", "sms"]).notification_ids
    clock.advance(10)
    with MailServer() as mail, SmsProvider() as provider:

        async def go() -> int:
            kwargs = pinned.redis.connection_pool.connection_kwargs
            connection = ContactReads(
                host=kwargs["host"], port=kwargs["port"], db=kwargs.get("db", 0), password=kwargs.get("password")
            )
            scheduler = AsyncScheduler(connection, core=pinned.core)
            keys = pinned.core.keys
            twilio = TwilioMessages(SID, TOKEN, "+15005550006", base_url=provider.url)
            email = EmailChannel(
                connection, keys, host="127.0.0.1", port=mail.port, from_address="z@example.com", starttls=False
            )
            router = Router({"email": email, "sms": SmsChannel(connection, keys, twilio)}, default=("email",))
            try:
                await Worker(scheduler, router).tick()
            finally:
                await router.aclose()
                await scheduler.close()
            return connection.reads

        assert asyncio.run(go()) == 1, "opt-outs, the renderer, email and SMS share one read"
        assert len(provider.accepted) == 2 and all(mail.to(f"{who}@example.com") for who in people)
    assert _statuses(pinned, ids) == ["sent"] * 3


# -- HTTP API and CLI -------------------------------------------------------------------------------------------


def test_http_opt_outs_by_the_recipient_an_admin_or_a_scope(client: TestClient, tokens: Tokens) -> None:  # noqa: F811
    ana, admin = tokens.headers("ana"), tokens.headers("ops", admin=True)
    writer = tokens.headers("crm", scopes=(SCOPE_CONTACTS_WRITE,))
    prefs = tokens.headers("prefs-svc", scopes=(SCOPE_PREFERENCES_WRITE,))
    stranger, scheduler = tokens.headers("mallory"), tokens.headers("billing", scopes=(SCOPE_SCHEDULE_ANY,))
    path = "/api/contacts/?recipient=ana"
    got = client.patch(path, headers=ana, json={"email": "ana@example.com", "opt_out": ["sms:marketing"]})
    assert got.status_code == 200 and got.json()["opt_outs"] == {"sms": ["marketing"]}
    got = client.patch(path, headers=admin, json={"opt_out": ["email:marketing"]})
    assert got.json()["opt_outs"] == {"sms": ["marketing"], "email": ["marketing"]}
    got = client.patch(path, headers=writer, json={"opt_in": ["sms:marketing"]})
    assert got.json()["opt_outs"] == {"email": ["marketing"]}
    by_scope = client.patch(path, headers=prefs, json={"opt_outs": {"websocket": ["*"]}})
    assert by_scope.status_code == 200, by_scope.text
    assert by_scope.json()["opt_outs"] == {"websocket": ["*"]} and by_scope.json()["email"] is None
    assert client.get(path, headers=prefs).json()["opt_outs"] == {"websocket": ["*"]}
    for other in (stranger, scheduler):
        refused = client.patch(path, headers=other, json={"opt_out": ["sms:marketing"]})
        assert refused.status_code == 403, refused.text
        assert client.get(path, headers=other).status_code == 403
    assert client.get(path, headers=ana).json()["opt_outs"] == {"websocket": ["*"]}
    assert client.patch(path, headers=ana, json={"opt_outs": None}).json()["opt_outs"] == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"opt_out": ["sms"]}, "opt_out"),
        ({"opt_out": "sms:marketing"}, "opt_out"),
        ({"opt_in": ["bad channel:x"]}, "opt_in"),
        ({"opt_outs": {"sms": "marketing"}}, "opt_outs"),
        ({"opt_outs": {"sms": [""]}}, "opt_outs"),
        ({"opt_outs": {"a/b": ["x"]}}, "opt_outs"),
    ],
)
def test_http_bad_opt_outs_are_422_naming_the_field(
    client: TestClient,  # noqa: F811
    tokens: Tokens,  # noqa: F811
    body: dict[str, object],
    field: str,
) -> None:
    ana = tokens.headers("ana")
    client.patch("/api/contacts/", headers=ana, json={"opt_out": ["sms:marketing"]})
    r = client.patch("/api/contacts/", headers=ana, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"].startswith(field), r.json()
    assert client.get("/api/contacts/", headers=ana).json()["opt_outs"] == {"sms": ["marketing"]}


def test_http_status_shows_the_skipped_channels(
    client: TestClient,  # noqa: F811
    tokens: Tokens,  # noqa: F811
    zs: Scheduler,
) -> None:
    ana, admin = tokens.headers("ana"), tokens.headers("ops", admin=True)
    client.patch("/api/contacts/", headers=ana, json={"opt_out": ["pager:news", "webhook:news"]})
    ids = zs.schedule(["ana"], "N", "m", delay=0, type="news", channels=["pager", "webhook"]).notification_ids
    zs.schedule(["ana"], "N", "m", delay=0, type="alert", channels=["pager"])
    tick(zs, Router({"pager": Recorder(), "webhook": Recorder()}, default=("pager",)))
    view = client.get(f"/api/notifications/{ids[0]}/", headers=ana).json()
    assert view["scheduled_status"] == "skipped" and view["skipped_at"] is not None
    assert view["deliveries"] == {"pager": "skipped", "webhook": "skipped"}
    assert view["opted_out"] == ["pager", "webhook"]
    assert view["last_error"] == "ana opted out of pager and webhook for type 'news'", "theirs to read"
    listed = client.get("/api/notifications/?status=skipped", headers=admin).json()
    assert [n["id"] for n in listed["items"]] == ids


def test_cli_sets_shows_and_lists(redis_url: str, prefix: str, zs: Scheduler) -> None:
    target = ["--redis-url", redis_url, "--prefix", prefix]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*ZSCHED, *args, *target], capture_output=True, text=True, timeout=60, check=False)

    done = run("contact", "set", "gina", "--opt-out", "sms:marketing", "--opt-out", "email:*", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["opt_outs"] == {"sms": ["marketing"], "email": ["*"]}
    done = run("contact", "set", "gina", "--opt-in", "email:*", "--opt-out", "webhook:digest")
    assert done.returncode == 0, done.stderr
    assert "opt_outs: sms: marketing; webhook: digest" in done.stdout, done.stdout
    shown = run("contact", "show", "gina")
    assert "opt_outs: sms: marketing; webhook: digest" in shown.stdout
    bad = run("contact", "set", "gina", "--opt-out", "sms")
    assert bad.returncode == 2 and "'channel:type' entries" in bad.stderr, bad.stderr
    assert json.loads(run("contact", "set", "gina", "--no-opt-outs", "--json").stdout)["opt_outs"] == {}
    zs.set_contact("gina", opt_out=["pager:news"])
    (nid,) = zs.schedule(["gina"], "N", "m", delay=0, type="news", channels=["pager"]).notification_ids
    tick(zs, Router({"pager": Recorder()}, default=("pager",)))
    listed = run("list", "gina", "--status", "skipped")
    assert listed.returncode == 0 and listed.stdout.split()[:2] == [str(nid), "skipped"], listed.stdout
    status = run("status", str(nid))
    assert "skipped_at" in status.stdout and "opted_out: ['pager']" in status.stdout, status.stdout
