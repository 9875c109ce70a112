"""Digests on a real server: a recipient's notifications with one digest_key, due within the window, go out as one
delivery per channel (the websocket inbox and a callable channel here), a count plus the items, none before its own
due time; a full digest goes at once; a cancelled member is left out; a worker that dies holding a digest, or in
the middle of sending one, loses nothing; a failed digest is retried whole. The clock is pinned: workers run one
round at a time, at the times the test sets."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
import pytest
import redis
import redis.asyncio as aioredis

from tests.conftest import ManualClock
from tests.integration.http_support import TestClient, Tokens, client, schedule_body, settings, tokens
from tests.integration.test_cli import ZSCHED
from zsched import AsyncScheduler, Core, Keyspace, RetryPolicy, Scheduler
from zsched.delivery.callables import CallableDelivery
from zsched.delivery.inbox import InboxDelivery
from zsched.delivery.router import Router
from zsched.delivery.worker import Worker
from zsched.engine import Script
from zsched.engine.replies import JoinDigestReply
from zsched.errors import FieldError
from zsched.models import Notification, ms_to_datetime
from zsched.web import openapi

__all__ = ["client", "settings", "tokens"]  # fixtures used by name

S = 1000
LEASE_MS = 5 * S
CHANNELS = ["websocket", "hook"]


@pytest.fixture
def zs(redis_url: str, keyspace: Keyspace, clock: ManualClock) -> Iterator[Scheduler]:
    core = Core(keyspace, clock=clock, retry=RetryPolicy(delays_ms=(10 * S, 20 * S)))
    scheduler = Scheduler(redis.Redis.from_url(redis_url), core=core)
    yield scheduler
    scheduler.close()


class Hook:
    """A callable channel that records what it is handed, refusing while ``down``."""

    def __init__(self) -> None:
        self.got: list[Notification] = []
        self.down = False

    async def __call__(self, n: Notification) -> None:
        if self.down:
            raise ConnectionRefusedError("hook down")
        self.got.append(n)


def tick(zs: Scheduler, hook: Hook, *, lease_ms: int = LEASE_MS) -> None:
    """One worker round at the pinned time, through the inbox and the hook."""

    async def go() -> None:
        kwargs = zs.redis.connection_pool.connection_kwargs
        connection = aioredis.Redis(
            host=kwargs.get("host", "127.0.0.1"),
            port=kwargs.get("port", 6379),
            db=kwargs.get("db", 0),
            password=kwargs.get("password"),
        )
        scheduler = AsyncScheduler(connection, core=zs.core)
        inbox = InboxDelivery(connection, zs.core.keys, clock=zs.core.clock)
        try:
            router = Router({"websocket": inbox, "hook": CallableDelivery(hook)})
            await Worker(scheduler, router, lease_ms=lease_ms).tick()
        finally:
            await scheduler.close()

    asyncio.run(go())


def inbox(zs: Scheduler, recipient: str) -> list[dict[str, Any]]:
    p = zs.core.keys.for_recipient(recipient)
    return [msgspec.json.decode(f[b"n"]) for _, f in zs.redis.xrange(p.inbox(recipient))]


def one(zs: Scheduler, recipient: str, title: str, delay_s: float, **options: Any) -> int:
    options.setdefault("digest_key", "comments")
    options.setdefault("channels", CHANNELS)
    (nid,) = zs.schedule([recipient], title, f"{title}!", delay=delay_s, **options).notification_ids
    return nid


def view(zs: Scheduler, ids: Sequence[int]) -> list[tuple[str, int | None]]:
    return [(n.scheduled_status, n.digest) for n in (zs.status(i) for i in ids)]


def test_members_due_within_the_window_go_out_as_one_delivery_per_channel(zs: Scheduler, clock: ManualClock) -> None:
    hook = Hook()
    ids = [one(zs, "ann", f"c{i}", 10 + 10 * i, digest_window=60) for i in range(3)]  # due at 10, 20, 30 s
    (bo,) = [one(zs, "bo", "bo's", 15, digest_window=60)]
    (later,) = [one(zs, "ann", "late", 75, digest_window=60)]  # after the first digest's close (70 s)
    (plain,) = zs.schedule(["ann"], "plain", "p", delay=12, channels=CHANNELS).notification_ids
    start = clock.ms
    for at_s in (10, 12, 15, 20, 30, 69.999):
        clock.ms = start + round(at_s * S)
        tick(zs, hook)
        assert [n.id for n in hook.got] == [plain] * (at_s >= 12), f"nothing of a digest before its close ({at_s} s)"
    assert view(zs, ids) == [("pending", ids[0])] * 3, "each waits in the digest its first member opened"
    assert zs.status(bo).digest == bo and zs.stats().counts["pending"] == 5
    clock.ms = start + 70 * S
    tick(zs, hook)
    (digest,) = [n for n in hook.got if n.id != plain]
    assert (digest.id, digest.recipient, digest.title) == (ids[0], "ann", "3 new notifications")
    assert digest.data["count"] == 3 and digest.data["digest_key"] == "comments"
    assert [(i["id"], i["title"], i["message"]) for i in digest.data["items"]] == [
        (ids[i], f"c{i}", f"c{i}!") for i in range(3)
    ]
    (message,) = [m for m in inbox(zs, "ann") if m["id"] != plain]
    assert message["title"] == "3 new notifications" and [i["id"] for i in message["data"]["items"]] == ids
    assert view(zs, ids) == [("sent", ids[0])] * 3
    assert all(zs.status(i).sent_at is not None for i in ids) and zs.stats().totals["sent"] == 4
    assert zs.redis.exists(zs.core.keys.partitions[0].digest(str(ids[0]))) == 0, "a sent digest's record is dropped"
    clock.ms = start + 75 * S
    tick(zs, hook)
    assert zs.status(later).digest == later, "a member due after the close opens the next digest"
    clock.ms = start + 135 * S
    tick(zs, hook)
    assert [(n.id, n.data["count"]) for n in hook.got if n.id not in (plain, ids[0])] == [(bo, 1), (later, 1)]


def test_a_many_recipient_call_gives_each_recipient_their_own_digest(zs: Scheduler, clock: ManualClock) -> None:
    hook = Hook()
    people = ["ann", "bo", "cy"]
    first = zs.schedule(people, "c0", "m", delay=1, digest_key="k", channels=CHANNELS, digest_window=10)
    second = zs.schedule(people[:2], "c1", "m", delay=2, digest_key="k", channels=CHANNELS)
    start = clock.ms
    for at_s in (1, 2, 11):
        clock.ms = start + at_s * S
        tick(zs, hook)
    got = {n.recipient: [i["id"] for i in n.data["items"]] for n in hook.got}
    assert got == {
        "ann": [first.notification_ids[0], second.notification_ids[0]],
        "bo": [first.notification_ids[1], second.notification_ids[1]],
        "cy": [first.notification_ids[2]],
    }
    assert [zs.status(i).digest for i in second.notification_ids] == first.notification_ids[:2]


def test_a_full_digest_goes_at_once_but_never_before_a_members_due_time(zs: Scheduler, clock: ManualClock) -> None:
    hook = Hook()
    first, second, third = (one(zs, "ann", f"c{i}", 10 + 10 * i, digest_max=2) for i in range(3))
    start = clock.ms
    clock.ms = start + 10 * S
    tick(zs, hook)
    clock.ms = start + 20 * S - 1
    tick(zs, hook)
    assert hook.got == []
    clock.ms = start + 20 * S
    tick(zs, hook)
    assert [(n.id, n.data["count"]) for n in hook.got] == [(first, 2)], "full at its second member's due time"
    assert view(zs, [first, second, third]) == [("sent", first), ("sent", first), ("pending", None)]
    clock.ms = start + 30 * S
    tick(zs, hook)
    assert zs.status(third).digest == third


def test_a_full_digest_leaves_out_a_member_past_its_expiry(zs: Scheduler, clock: ManualClock) -> None:
    hook = Hook()
    start = clock.ms
    lapsing = one(zs, "ann", "lapsing", 1, digest_max=2, expires_at=ms_to_datetime(start + 5 * S))
    full = one(zs, "ann", "full", 10)
    for at_s in (1, 10):
        clock.ms = start + at_s * S
        tick(zs, hook)
    assert [(n.id, [i["id"] for i in n.data["items"]]) for n in hook.got] == [(lapsing, [full])]
    assert view(zs, [lapsing, full]) == [("pending", lapsing), ("sent", lapsing)]
    clock.ms = start + 1 * S + zs.core.digest_window_ms
    tick(zs, hook)
    assert zs.status(lapsing).scheduled_status == "expired" and len(hook.got) == 1


def test_a_cancelled_member_is_left_out_and_no_empty_digest_goes(zs: Scheduler, clock: ManualClock) -> None:
    hook = Hook()
    kept, dropped = one(zs, "ann", "keep", 10), one(zs, "ann", "drop", 20)
    gone = [one(zs, "bo", f"b{i}", 10 + i) for i in range(2)]
    start = clock.ms
    clock.ms = start + 21 * S
    tick(zs, hook)
    assert view(zs, [kept, dropped, *gone]) == [("pending", kept)] * 2 + [("pending", gone[0])] * 2
    for nid in (dropped, *gone):
        assert zs.cancel(nid).scheduled_status == "cancelled"
    clock.ms = start + 10 * S + zs.core.digest_window_ms
    tick(zs, hook)
    assert [(n.id, [i["id"] for i in n.data["items"]]) for n in hook.got] == [(kept, [kept])]
    assert [m["id"] for m in inbox(zs, "bo")] == [] and zs.stats().counts["pending"] == 0


def test_a_worker_that_dies_holding_or_sending_a_digest_loses_nothing(zs: Scheduler, clock: ManualClock) -> None:
    hook = Hook()
    p = zs.core.keys.partitions[0]
    ids = [one(zs, "ann", f"c{i}", 10 + i, digest_window=30) for i in range(3)]
    start = clock.ms
    clock.ms = start + 10 * S
    zs.run(zs.core.claim(p, 100, LEASE_MS))  # claimed, then the worker died before joining it
    clock.ms = start + 12 * S
    tick(zs, hook)
    assert view(zs, ids) == [("processing", None), ("pending", ids[1]), ("pending", ids[1])]
    clock.ms = start + 16 * S  # its lease is over: reaped, claimed again, and it joins the open digest
    tick(zs, hook)
    assert view(zs, ids) == [("pending", ids[1])] * 3
    clock.ms = start + 41 * S  # the digest (opened by the second, due at 11 s) closes at 41 s
    (claimed,) = [n for n in zs.run(zs.core.claim(p, 1, LEASE_MS)).notifications]
    joined = zs.run(zs.core.join_digest(p, claimed, LEASE_MS))  # a worker takes the digest, and dies sending it
    assert joined.code == "flush" and sorted(n.id for n in joined.members) == sorted(ids)
    assert view(zs, ids) == [("processing", ids[1])] * 3 and zs.stats().counts["processing"] == 3
    clock.ms = start + 42 * S
    tick(zs, hook)
    assert hook.got == [], "the digest is the dead worker's until its lease ends"
    clock.ms = start + 47 * S
    tick(zs, hook)
    assert [(n.id, sorted(i["id"] for i in n.data["items"])) for n in hook.got] == [(ids[1], sorted(ids))]
    assert view(zs, ids) == [("sent", ids[1])] * 3


def test_a_failed_digest_is_retried_whole(zs: Scheduler, clock: ManualClock) -> None:
    hook = Hook()
    ids = [one(zs, "ann", f"c{i}", 10 + i, digest_window=5) for i in range(2)]
    start = clock.ms
    for at_s in (10, 11):
        clock.ms = start + at_s * S
        tick(zs, hook)
    hook.down = True
    clock.ms = start + 15 * S
    tick(zs, hook)
    states = [zs.status(i) for i in ids]
    assert [(n.scheduled_status, n.attempts, n.digest) for n in states] == [("pending", 1, ids[0])] * 2
    assert all(n.last_error and "hook down" in n.last_error for n in states)
    assert [m["data"]["count"] for m in inbox(zs, "ann")] == [2], "the websocket got it; only the hook is retried"
    hook.down = False
    clock.ms = start + 25 * S
    tick(zs, hook)
    assert [(n.id, n.data["count"], n.attempts) for n in hook.got] == [(ids[0], 2, 2)]
    assert len(inbox(zs, "ann")) == 1, "a retry skips the channel already delivered"
    assert view(zs, ids) == [("sent", ids[0])] * 2


def test_a_resent_join_call_has_one_outcome(zs: Scheduler, clock: ManualClock) -> None:
    p = zs.core.keys.partitions[0]
    (nid,) = [one(zs, "ann", "c", 1)]
    clock.advance(1 * S)
    (claimed,) = zs.run(zs.core.claim(p, 10, LEASE_MS)).notifications
    (step,) = next(zs.core.join_digest(p, claimed, LEASE_MS))
    assert isinstance(step, Script)
    replies = [
        JoinDigestReply.read(zs.scripts[step.name](keys=step.keys, args=step.args, client=zs.redis)) for _ in range(2)
    ]
    assert replies[0] == replies[1] and replies[0].code == "held" and replies[0].digest == nid
    assert zs.status(nid).attempts == 0, "held, its claim's attempt is given back once"


def test_two_workers_claiming_one_digest_send_it_once(zs: Scheduler, clock: ManualClock) -> None:
    p = zs.core.keys.partitions[0]
    ids = [one(zs, "ann", f"c{i}", 1 + i, digest_window=10) for i in range(3)]
    start = clock.ms
    clock.ms = start + 3 * S
    for n in zs.run(zs.core.claim(p, 10, LEASE_MS)).notifications:
        assert zs.run(zs.core.join_digest(p, n, LEASE_MS)).code == "held"
    clock.ms = start + 11 * S  # the close: each worker claims one member
    (a,) = zs.run(zs.core.claim(p, 1, LEASE_MS)).notifications
    (b,) = zs.run(zs.core.claim(p, 1, LEASE_MS)).notifications
    first = zs.run(zs.core.join_digest(p, a, LEASE_MS))
    assert first.code == "flush" and sorted(n.id for n in first.members) == sorted(ids)
    assert zs.run(zs.core.join_digest(p, b, LEASE_MS)).code == "busy", "the other worker leaves its member alone"
    zs.run(zs.core.ack(p, [n.id for n in first.members]))
    assert zs.run(zs.core.join_digest(p, b, LEASE_MS)).code == "gone"


def test_a_member_rescheduled_out_of_its_digest_is_not_sent_early(zs: Scheduler, clock: ManualClock) -> None:
    hook = Hook()
    kept, moved = one(zs, "ann", "keep", 1), one(zs, "ann", "moved", 2)
    start = clock.ms
    clock.ms = start + 2 * S
    tick(zs, hook)
    assert view(zs, [kept, moved]) == [("pending", kept)] * 2
    zs.reschedule(moved, delay=zs.core.digest_window_ms / 1000 + 60)  # past the close
    clock.ms = start + 1 * S + zs.core.digest_window_ms
    tick(zs, hook)
    assert [(n.id, [i["id"] for i in n.data["items"]]) for n in hook.got] == [(kept, [kept])]
    assert zs.status(moved).scheduled_status == "pending"
    clock.ms = start + 2 * S + zs.core.digest_window_ms + 60 * S
    tick(zs, hook)
    assert zs.status(moved).digest == moved, "due again, it opens a digest of its own"


def test_the_digest_options_are_checked(zs: Scheduler) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"digest_key": ""}, "digest_key must be 1 to 200 characters"),
        ({"digest_key": "a\nb"}, "digest_key must be 1 to 200 characters"),
        ({"digest_window": 30}, "digest_window goes with digest_key"),
        ({"digest_max": 5}, "digest_max goes with digest_key"),
        ({"digest_key": "k", "digest_window": 0.5}, "digest_window must be between 1 s and 1 day; got 0.5 s"),
        ({"digest_key": "k", "digest_window": 90_000}, "digest_window must be between 1 s and 1 day"),
        ({"digest_key": "k", "digest_max": 1}, "digest_max must be a whole number from 2 to 1000; got 1"),
        ({"digest_key": "k", "digest_max": "5"}, "digest_max must be a whole number from 2 to 1000"),
        ({"digest_key": "k", "on_late": "skip"}, "late_after must be longer than digest_window.*60 s.*300 s"),
    ]
    for options, message in cases:
        with pytest.raises(FieldError, match=message):
            zs.schedule(["ann"], "t", "m", delay=1, **options)
    n = zs.status(zs.schedule(["ann"], "t", "m", delay=1, digest_key="k").notification_ids[0])
    assert (n.digest_key, n.digest_window_ms, n.digest_max, n.digest) == ("k", 300_000, 50, None)


async def test_the_async_face_schedules_a_digest_member(azs: AsyncScheduler) -> None:
    result = await azs.schedule(["ann"], "t", "m", delay=60, digest_key="k", digest_window=90, digest_max=3)
    n = await azs.status(result.notification_ids[0])
    assert (n.digest_key, n.digest_window_ms, n.digest_max) == ("k", 90_000, 3)


def test_http_schedules_digest_members_and_says_what_is_wrong(client: TestClient, tokens: Tokens) -> None:
    me = tokens.headers("alice", scheme="Bearer")
    body = schedule_body(["alice"], digest_key="comments:7", digest_window_s=120, digest_max=10)
    made = client.post("/api/notifications/schedule/", headers=me, json=body)
    assert made.status_code == 201, made.text
    (nid,) = made.json()["notification_ids"]
    view = client.get(f"/api/notifications/{nid}/", headers=me).json()
    assert (view["digest_key"], view["digest_window_ms"], view["digest_max"], view["digest"]) == (
        "comments:7",
        120_000,
        10,
        None,
    )
    cases: list[tuple[dict[str, object], str, str]] = [
        (
            {"digest_key": "k", "digest_window_s": 0.5},
            "digest_window_s",
            "digest_window_s must be between 1 s and 1 day",
        ),
        ({"digest_window_s": 60}, "digest_window_s", "digest_window_s goes with digest_key"),
        ({"digest_key": "k", "digest_max": 1}, "digest_max", "digest_max must be a whole number from 2 to 1000"),
        ({"digest_max": 5}, "digest_max", "digest_max goes with digest_key"),
        ({"digest_key": ""}, "digest_key", "digest_key must be 1 to 200 characters"),
    ]
    for extra, field, message in cases:
        bad = client.post("/api/notifications/schedule/", headers=me, json=schedule_body(["alice"], **extra))
        assert bad.status_code == 422 and bad.json()["field"] == field, bad.text
        assert message in bad.json()["detail"], bad.text
    assert client.get("/api/notifications/?status=pending", headers=me).json()["items"][0]["id"] == nid


def test_the_openapi_document_has_the_digest_fields() -> None:
    schemas = openapi.document()["components"]["schemas"]
    body = schemas["ScheduleBody"]["properties"]
    assert {"digest_key", "digest_window_s", "digest_max"} <= set(body)
    assert body["digest_max"]["anyOf"][0] | {"description": ""} == {
        "type": "integer",
        "minimum": 2,
        "maximum": 1000,
        "description": "",
    }
    assert {"digest_key", "digest_window_ms", "digest_max", "digest"} <= set(schemas["NotificationView"]["properties"])


def test_cli_digest_members_survive_a_killed_worker_and_go_out_once(redis_url: str, prefix: str) -> None:
    """Real time, real processes: three members scheduled with the CLI are held by one worker, which is killed
    (SIGKILL, a short lease); another worker sends them as one inbox message when the window closes."""
    target = ["--redis-url", redis_url, "--prefix", prefix]
    env = {**os.environ, "ZSCHED_REDIS_URL": "", "ZSCHED_LEASE_MS": "1000"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*ZSCHED, *args, *target], capture_output=True, text=True, timeout=60, env=env)

    def worker() -> subprocess.Popen[str]:
        command = [*ZSCHED, "worker", *target]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)

    zs = Scheduler(redis.Redis.from_url(redis_url), core=Core(Keyspace(prefix)))

    def status(nid: int) -> dict[str, Any]:
        got: dict[str, Any] = msgspec.to_builtins(zs.status(nid))
        return got

    first = worker()
    try:
        base = ["schedule", "--to", "ann", "--message", "m", "--in", "1s", "--json", "--digest-key", "k"]
        ids = []
        for i in range(3):
            made = run(*base, "--title", f"c{i}", "--digest-window", "10s", "--digest-max", "5")
            assert made.returncode == 0, made.stderr
            ids += json.loads(made.stdout)["notification_ids"]
        deadline = time.monotonic() + 30
        while [status(i)["digest"] for i in ids] != [ids[0]] * 3:
            assert time.monotonic() < deadline, [status(i) for i in ids]
            time.sleep(0.05)
    finally:
        first.kill()
        first.communicate(timeout=20)
    assert [status(i)["scheduled_status"] for i in ids] == ["pending"] * 3, "held until the window closes"
    shown = run("status", str(ids[1])).stdout
    assert "digest_key: k" in shown and f"digest: {ids[0]}" in shown, shown
    second = worker()
    try:
        deadline = time.monotonic() + 30
        while any(status(i)["scheduled_status"] != "sent" for i in ids):
            assert time.monotonic() < deadline, [status(i) for i in ids]
            time.sleep(0.1)
    finally:
        second.send_signal(signal.SIGTERM)
        output, _ = second.communicate(timeout=20)
    views = [zs.status(i) for i in ids]
    zs.close()
    assert all(v.sent_at and v.sent_at >= v.scheduled_at and v.digest == ids[0] for v in views), views
    stream = redis.Redis.from_url(redis_url).xrange(f"{prefix}:{{p0}}:inbox:ann")
    (message,) = [msgspec.json.decode(fields[b"n"]) for _, fields in stream]
    assert message["id"] == ids[0] and message["data"]["count"] == 3, message
    assert [item["title"] for item in message["data"]["items"]] == ["c0", "c1", "c2"]
    assert f"digest {ids[0]} sent to ann: 3 notification(s)" in output, output
    late = [
        float(ms) for ms in re.findall(r"sent notification \d+ to ann \(attempt \d+, (-?[\d.]+) ms after due", output)
    ]
    assert len(late) == 3 and max(late) < 8_000, f"lateness counts from the digest's close, not the 10 s wait: {late}"


def test_a_digest_honours_each_members_opt_outs_when_it_is_sent(zs: Scheduler, clock: ManualClock) -> None:
    """Opt-outs are read when the digest goes out: a member of a type its recipient opted out of through the hook is
    carried through the websocket alone, and one whose type is opted out of every channel ends skipped, not
    carried (the digest counts only what it carries)."""
    hook = Hook()
    zs.set_contact("ann", opt_out=["hook:*", "*:marketing"])  # set after nothing: read at send time anyway
    kept = [one(zs, "ann", f"c{i}", 10 + i, digest_window=30) for i in range(2)]
    (dropped,) = [one(zs, "ann", "sale", 12, digest_window=30, type="marketing")]
    start = clock.ms
    for at_s in (10, 11, 12, 40):
        clock.ms = start + at_s * S
        tick(zs, hook)
    assert hook.got == [], "the hook was opted out of for every type"
    messages = [m for m in inbox(zs, "ann") if m.get("id") == kept[0]]
    assert len(messages) == 1 and messages[0]["data"]["count"] == 2, messages
    assert [item["id"] for item in messages[0]["data"]["items"]] == kept
    assert [zs.status(i).scheduled_status for i in kept] == ["sent", "sent"]
    skipped = zs.status(dropped)
    assert skipped.scheduled_status == "skipped" and "marketing" in (skipped.last_error or ""), skipped
