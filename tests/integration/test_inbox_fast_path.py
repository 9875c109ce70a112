"""A worker whose websocket channel is the inbox delivers websocket-only notifications inside its claim: one
script call claims them, appends each to its recipient's inbox, publishes it, and marks it sent. What a client
gets is what the Python path would have sent (``Delivered.of``, byte for byte); a lost reply resent appends
nothing twice; everything else in the batch still goes through Python; the worker counts, logs and observes
them as its own deliveries."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
import redis
import redis.asyncio as aioredis
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.clusterutil import LocalCluster
from tests.conftest import ManualClock
from tests.helpers import Recorder, tick
from tests.integration.faultproxy import FaultProxy, evalsha_of
from tests.integration.wsutil import GatewayServer, open_socket, receive, until_ready, user_token
from zsched import AsyncScheduler, Core, Keyspace, Scheduler, tracing
from zsched.delivery import CallableDelivery, Delivery, InboxDelivery, Router
from zsched.delivery.worker import Worker
from zsched.engine import Script
from zsched.engine.keys import Partition
from zsched.engine.leases import InboxPlan
from zsched.engine.replies import ClaimReply
from zsched.engine.scripts import sources
from zsched.models import Delivered, Notification, json_encoder, ms_to_datetime
from zsched.web.gateway.socket import stamp

NAMES = {hashlib.sha1(source.encode()).hexdigest(): name for name, source in sources().items()}
PLAN = InboxPlan(maxlen=1000, keep_ms=60_000)
AWKWARD = ["a/b", 'quote"d', "back\\slash", "ünïcödé", "名前", "plain"]
TITLE = 'Ünïcode "quoted" \\ </script> \u2028 done'
MESSAGE = "line one\nline two\ttabbed \x01 control"
DATA: dict[str, Any] = {
    "n": 1,
    "f": 2.5,
    "e": 1e100,
    "neg": -0.001,
    "list": [1, "two", None, True, {"deep": []}],
    "nested": {"k": "v/w", "empty": {}},
    "ß": "ü",
}
delivered_decoder = msgspec.json.Decoder(Delivered)
KW = ("host", "port", "db", "password")  # what a test's sync connection tells an asyncio one


class Counting(aioredis.Redis):
    """An asyncio connection that notes the name of every script it runs."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.ran: list[str] = []

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:  # type: ignore[override]
        reply = await super().evalsha(sha, numkeys, *keys_and_args)  # a NOSCRIPT reply raises: not a run
        self.ran.append(NAMES[sha])
        return reply

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        """A pipeline noting its scripts as they are queued (it loads them before it sends anything)."""
        pipe = super().pipeline(transaction, shard_hint)
        queue = pipe.evalsha

        def evalsha(sha: str, numkeys: int, *keys_and_args: Any) -> Any:
            self.ran.append(NAMES[sha])
            return queue(sha, numkeys, *keys_and_args)

        setattr(pipe, "evalsha", evalsha)  # noqa: B010 (an instance's method, replaced)
        return pipe


def run_tick(
    zs: Scheduler, make: Callable[[aioredis.Redis], Delivery] | None = None, **options: Any
) -> tuple[Worker, list[str]]:
    """One worker round with ``zs``'s core over a fresh counting connection (``make`` builds the delivery on
    it); the worker and the scripts it ran, in order."""

    async def go() -> tuple[Worker, list[str]]:
        connection = Counting(**{k: v for k, v in zs.redis.connection_pool.connection_kwargs.items() if k in KW})
        scheduler = AsyncScheduler(connection, core=zs.core)
        worker = Worker(scheduler, make(connection) if make else None, **options)
        try:
            await worker.tick()
        finally:
            await scheduler.close()
        return worker, connection.ran

    return asyncio.run(go())


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def entries(r: redis.Redis, p: Partition, recipient: str) -> list[tuple[str, dict[bytes, bytes]]]:
    return [(sid.decode(), fields) for sid, fields in r.xrange(p.inbox(recipient))]


def as_sent(zs: Scheduler, nid: int) -> tuple[Notification, bytes]:
    """The notification as its status reads now (sent), and the message the Python path makes of it."""
    n = zs.status(nid)
    assert n.sent_at is not None
    return n, json_encoder.encode(Delivered.of(n, n.sent_at))


def listen(r: redis.Redis, p: Partition, recipients: list[str]) -> Any:
    pubsub = r.pubsub()
    pubsub.subscribe(*(p.user_channel(who) for who in recipients))
    for _ in recipients:  # the confirmations, so nothing published after this is missed
        message = pubsub.get_message(timeout=5)
        assert message is not None and message["type"] == "subscribe", message
    return pubsub


def published(pubsub: Any, count: int) -> dict[str, bytes]:
    """channel -> the message published on it, ``count`` of them; then nothing more for a moment."""
    got: dict[str, bytes] = {}
    deadline = time.monotonic() + 10
    while len(got) < count and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)
        if message is not None:
            assert message["channel"].decode() not in got, "published twice"
            got[message["channel"].decode()] = message["data"]
    assert pubsub.get_message(timeout=0.2) is None, "published more than once"
    pubsub.close()
    return got


def test_a_websocket_only_batch_is_claimed_delivered_and_sent_in_one_script_call(
    pinned: Scheduler, clock: ManualClock, r: redis.Redis
) -> None:
    clock.ms -= clock.ms % 1000  # sent at a whole second: no fraction in sent_at; the due times have one
    call = pinned.schedule(
        AWKWARD, TITLE, MESSAGE, delay=0.123, type="reminder", priority="high", data=DATA, created_by="billing"
    )
    (named,) = pinned.schedule(
        ["solo"], "Solo", "names it", delay=0.2, channels=["websocket"], created_by="billing"
    ).notification_ids
    (bare,) = pinned.schedule(["bare"], "Bare", "no extras", delay=0.05).notification_ids
    clock.advance(1000)
    ids = [*call.notification_ids, named, bare]
    people = [*AWKWARD, "solo", "bare"]
    p = pinned.core.keys.partitions[0]
    pubsub = listen(r, p, people)

    worker, ran = run_tick(pinned)

    assert ran.count("claim") == 1 and not {"publish_inbox", "ack", "renew", "retry"} & set(ran), ran
    assert worker.delivered == len(ids)
    messages = published(pubsub, len(ids))
    for nid, who in zip(ids, people, strict=True):
        n, expected = as_sent(pinned, nid)
        assert (n.recipient, n.scheduled_status, n.attempts, n.sent_at) == (who, "sent", 1, ms_to_datetime(clock.ms))
        ((sid, fields),) = entries(r, p, who)
        assert fields == {b"n": expected, b"p": b"0-0"}, "byte for byte what Delivered.of encodes"
        assert delivered_decoder.decode(fields[b"n"]) == Delivered.of(n, n.sent_at)
        assert messages[p.user_channel(who)] == stamp(sid, expected.decode()).encode()
        assert 0 < r.pttl(p.inbox(who)) <= pinned.core.retention.sent_ms  # the default inbox keeps it that long
    assert r.zcard(p.processing) == 0
    purge_at = clock.ms + pinned.core.retention.sent_ms
    assert {int(m): s for m, s in r.zrange(p.sent, 0, -1, withscores=True)} == dict.fromkeys(ids, purge_at)
    totals = pinned.stats().totals
    assert (totals["claimed"], totals["sent"]) == (len(ids), len(ids))
    assert r.hget(p.pending_by_creator, "billing") is None, "the creator's quota count is released"
    assert pinned.stats().counts == {
        "pending": 0,
        "processing": 0,
        "sent": len(ids),
        "cancelled": 0,
        "failed": 0,
        "expired": 0,
        "collapsed": 0,
        "throttled": 0,
        "skipped": 0,
    }


def test_a_mixed_batch_sends_only_the_websocket_only_ones_in_lua(
    pinned: Scheduler, clock: ManualClock, r: redis.Redis
) -> None:
    paged: list[Notification] = []
    keys = pinned.core.keys

    def make(connection: aioredis.Redis) -> Delivery:
        inbox = InboxDelivery(connection, keys, clock=clock)
        return Router({"websocket": inbox, "pager": CallableDelivery(paged.append)}, default=("websocket",))

    websocket = pinned.schedule(["w1", "w2"], "Mixed", "websocket", delay=0.1).notification_ids
    pager = pinned.schedule(["p1", "p2"], "Mixed", "pager", delay=0.1, channels=["pager"]).notification_ids
    (both,) = pinned.schedule(["b1"], "Mixed", "both", delay=0.1, channels=["websocket", "pager"]).notification_ids
    (named,) = pinned.schedule(["n1"], "Mixed", "named", delay=0.1, channels=["websocket"]).notification_ids
    clock.advance(200)

    _, ran = run_tick(pinned, make)

    assert (ran.count("claim"), ran.count("publish_inbox"), ran.count("ack")) == (1, 1, 1), ran
    assert sorted(n.id for n in paged) == sorted([*pager, both])
    p = keys.partitions[0]
    for nid in [*websocket, named]:
        n, expected = as_sent(pinned, nid)
        ((_, fields),) = entries(r, p, n.recipient)
        assert fields[b"n"] == expected
    ((_, fields),) = entries(r, p, "b1")  # through Python: sent_at is the worker's own clock there
    python_made = delivered_decoder.decode(fields[b"n"])
    assert python_made == Delivered.of(pinned.status(both), python_made.sent_at)
    assert [r.exists(p.inbox(who)) for who in ("p1", "p2")] == [0, 0]
    for nid in [*websocket, *pager, both, named]:
        assert (pinned.status(nid).scheduled_status, pinned.status(nid).attempts) == ("sent", 1)
    totals = pinned.stats().totals
    assert (totals["claimed"], totals["sent"]) == (6, 6)


def test_when_the_default_channels_are_not_the_websocket_only_those_naming_it_go_in_lua(
    pinned: Scheduler, clock: ManualClock, r: redis.Redis
) -> None:
    paged: list[Notification] = []

    def make(connection: aioredis.Redis) -> Delivery:
        inbox = InboxDelivery(connection, pinned.core.keys, clock=clock)
        return Router({"websocket": inbox, "pager": CallableDelivery(paged.append)}, default=("pager",))

    (unnamed,) = pinned.schedule(["u1"], "Default", "pager", delay=0.1).notification_ids
    (named,) = pinned.schedule(["n1"], "Named", "websocket", delay=0.1, channels=["websocket"]).notification_ids
    clock.advance(200)
    _, ran = run_tick(pinned, make)
    assert "publish_inbox" not in ran and ran.count("ack") == 1
    assert [n.id for n in paged] == [unnamed]
    p = pinned.core.keys.partitions[0]
    assert [len(entries(r, p, who)) for who in ("u1", "n1")] == [0, 1]
    assert entries(r, p, "n1")[0][1][b"n"] == as_sent(pinned, named)[1]


def test_no_inbox_in_the_websocket_slot_or_in_claim_off_means_python_delivers(
    pinned: Scheduler, clock: ManualClock
) -> None:
    seen: list[Notification] = []
    pinned.schedule(["a", "b"], "Elsewhere", "m", delay=0.1)
    clock.advance(200)
    _, ran = run_tick(pinned, lambda c: Router({"websocket": CallableDelivery(seen.append)}))
    assert len(seen) == 2 and ran.count("ack") == 1
    pinned.schedule(["c", "d"], "Held back", "m", delay=0.1)
    clock.advance(200)
    _, ran = run_tick(pinned, lambda c: InboxDelivery(c, pinned.core.keys, clock=clock, in_claim=False))
    assert (ran.count("publish_inbox"), ran.count("ack")) == (1, 1)
    assert pinned.stats().totals["sent"] == 4


def test_a_retry_and_a_recipient_taken_out_of_its_call_are_delivered_in_the_claim(
    pinned: Scheduler, clock: ManualClock, r: redis.Redis
) -> None:
    clock.ms -= clock.ms % 1000 - 7  # sent 7 ms past a second
    first, moved, third = pinned.schedule(["r1", "r2", "r3"], "Again", "m", delay=1, data={"k": [1]}).notification_ids
    pinned.reschedule(moved, delay=1.04)  # out of its call: a record of its own, its payload still the call's
    clock.advance(1000)
    tick(pinned, Recorder(fail={first}))  # r1 fails once (retried after 50 ms); r3 goes through Python
    assert (pinned.status(first).scheduled_status, pinned.status(first).attempts) == ("pending", 1)
    clock.advance(60)
    _, ran = run_tick(pinned)
    assert ran.count("claim") == 1 and "publish_inbox" not in ran and "ack" not in ran
    p = pinned.core.keys.partitions[0]
    for nid, who, attempts in ((first, "r1", 2), (moved, "r2", 1)):
        n, expected = as_sent(pinned, nid)
        assert (n.scheduled_status, n.attempts) == ("sent", attempts)
        ((_, fields),) = entries(r, p, who)
        assert fields[b"n"] == expected and delivered_decoder.decode(expected).attempt == attempts
    assert pinned.status(third).scheduled_status == "sent" and not r.exists(p.inbox("r3"))
    assert pinned.stats().totals["sent"] == 3


def test_records_the_claim_cannot_vouch_for_go_to_the_worker_and_fail_alone(
    pinned: Scheduler, clock: ManualClock, r: redis.Redis
) -> None:
    ids = [pinned.schedule([f"u{i}"], "Batch", "mixed", delay=0).notification_ids[0] for i in range(10)]
    p = pinned.core.keys.for_id(ids[0])
    corrupt = {
        ids[1]: (p.notifications, None),
        ids[2]: (p.notifications, '{"title": 5, "message": ["not", "text"]}'),
        ids[3]: (p.notifications, '{"title": "cut off'),
        ids[4]: (p.state, "{not json"),
        ids[5]: (p.notifications, '{"title":5,"message":"x"}'),
        ids[6]: (p.notifications, '{"title":"t","message":"m","data":[1]}'),
        ids[7]: (p.notifications, '{"title":"t","message":"m","priority":"meh"}'),
    }
    for nid, (key, value) in corrupt.items():
        if value is None:
            r.hdel(key, str(nid))
        else:
            r.hset(key, str(nid), value)
    good = [nid for nid in ids if nid not in corrupt]

    run_tick(pinned)

    failed = {int(m) for m in r.zrange(p.failed, 0, -1)}
    assert failed == set(corrupt)
    for nid in corrupt:
        assert str(r.hget(p.state, str(nid)), "utf-8").count("cannot decode the stored record: ") == 1
    for nid in good:
        n, expected = as_sent(pinned, nid)
        assert n.attempts == 1 and entries(r, p, n.recipient)[0][1][b"n"] == expected
    assert [r.exists(p.inbox(f"u{ids.index(nid)}")) for nid in corrupt] == [0] * len(corrupt)


def test_a_resent_claim_appends_and_publishes_nothing_twice(zs: Scheduler, r: redis.Redis) -> None:
    call = zs.schedule(["alice", "bob", "carol"], "Once", "only", delay=0).notification_ids
    p = zs.core.keys.partitions[0]
    pubsub = listen(r, p, ["alice", "bob", "carol"])
    (step,) = next(zs.core.claim(p, 10, 60_000, PLAN))
    script = zs.scripts["claim"]
    first = ClaimReply.read(script(keys=step.keys, args=step.args))
    again = ClaimReply.read(script(keys=step.keys, args=step.args))  # as redis-py resends after a lost reply
    assert again == first and [i for i, _, _ in first.sent] == call and first.claimed == []
    assert len(published(pubsub, 3)) == 3
    assert [len(entries(r, p, who)) for who in ("alice", "bob", "carol")] == [1, 1, 1]
    assert (zs.stats().totals["claimed"], zs.stats().totals["sent"]) == (3, 3)


@pytest.mark.parametrize("mode", ["drop", "delay"])
async def test_a_lost_claim_reply_is_answered_with_what_was_sent(
    mode: str, redis_url: str, zs: Scheduler, r: redis.Redis
) -> None:
    call = zs.schedule(["alice", "bob"], "Lost", "reply", delay=0).notification_ids
    p = zs.core.keys.partitions[0]
    proxy = FaultProxy(redis_url, mode, hold_s=0.25 if mode == "drop" else 1.0).start()
    scheduler = AsyncScheduler.from_url(proxy.url, socket_timeout_s=0.5, core=zs.core)
    try:
        await scheduler.ensure_layout()
        proxy.arm(evalsha_of("claim"))
        claimed = await scheduler.run(zs.core.claim(p, 10, 60_000, PLAN))
    finally:
        await scheduler.close()
        proxy.stop()
    assert proxy.faults == 1
    assert [i for i, _, _ in claimed.sent] == call and claimed.notifications == []
    assert [n.scheduled_status for n in claimed.sent_notifications()] == ["sent", "sent"]
    assert [len(entries(r, p, who)) for who in ("alice", "bob")] == [1, 1]
    assert zs.stats().totals["sent"] == 2


def test_a_gateway_client_receives_it_live_and_from_the_backlog(redis_url: str, prefix: str, zs: Scheduler) -> None:
    token = user_token(redis_url, prefix, "carol")
    server = GatewayServer(redis_url, prefix, heartbeat_s=60).start()
    try:
        with open_socket(server.url(token)) as live:
            assert until_ready(live) == []
            (nid,) = zs.schedule(["carol"], TITLE, MESSAGE, delay=0, data=DATA, priority="urgent").notification_ids
            _, ran = run_tick(zs)
            assert "publish_inbox" not in ran
            got = receive(live)
        expected = as_sent(zs, nid)[1]
        assert got.pop("stream_id") and got == msgspec.json.decode(expected)
        assert delivered_decoder.decode(msgspec.json.encode(got)) == delivered_decoder.decode(expected)
        with open_socket(server.url(token)) as later:  # connected after: the inbox replays it
            (replayed,) = until_ready(later)
        assert replayed.pop("stream_id") and replayed == got
    finally:
        server.stop()


def test_the_worker_counts_logs_and_observes_what_its_claim_sent(
    pinned: Scheduler, clock: ManualClock, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("zsched"))
    many = pinned.schedule([f"m{i}" for i in range(12)], "Many", "m", delay=0.1).notification_ids
    clock.advance(150)
    seen: list[tuple[str, int, float]] = []
    with caplog.at_level(logging.INFO, logger="zsched.worker"):
        worker, _ = run_tick(pinned, observer=lambda kind, n, late_ms: seen.append((kind, n.id, late_ms)))
    assert worker.delivered == 12
    assert [(kind, nid) for kind, nid, _ in seen] == [("sent", nid) for nid in many]
    assert all(late_ms == pytest.approx(50, abs=0.01) for _, _, late_ms in seen), "due -> the claim's clock"
    (line,) = [rec.getMessage() for rec in caplog.records if rec.getMessage().startswith("sent 12 notifications")]
    assert ",".join(str(nid) for nid in many) in line
    spans = [s for s in exporter.get_finished_spans() if s.name == "zsched.deliver"]
    assert sorted(s.attributes["zsched.notification_id"] for s in spans if s.attributes) == many

    caplog.clear()
    (one,) = pinned.schedule(["solo"], "One", "m", delay=0.1).notification_ids
    clock.advance(150)
    with caplog.at_level(logging.INFO, logger="zsched.worker"):
        run_tick(pinned)
    assert f"sent notification {one} to solo (attempt 1, 50.0 ms after due)" in caplog.messages
    provider.shutdown()


@pytest.mark.cluster
def test_a_claim_on_a_cluster_delivers_in_its_partitions_slot(redis_cluster: LocalCluster) -> None:
    core = Core(Keyspace(f"zf-{uuid.uuid4().hex[:8]}", partitions=4))
    zs = Scheduler(redis.RedisCluster(host="127.0.0.1", port=redis_cluster.masters[0]), core=core)
    people = [f"user{i}" for i in range(20)]
    ids = zs.schedule(people, "Cluster", "in one slot", delay=0).notification_ids

    async def drain() -> int:
        scheduler = AsyncScheduler(aioredis.RedisCluster(host="127.0.0.1", port=redis_cluster.masters[0]), core=core)
        worker = Worker(scheduler)
        try:
            await worker.tick()
        finally:
            await scheduler.close()
        return worker.delivered

    assert asyncio.run(drain()) == len(ids)
    for nid, who in zip(ids, people, strict=True):
        p = core.keys.for_recipient(who)
        ((_, fields),) = zs.redis.xrange(p.inbox(who))
        assert fields[b"n"] == as_sent(zs, nid)[1]
    assert zs.stats().counts["sent"] == len(ids)
    zs.close()


def test_due_times_render_as_the_worker_writes_them(pinned: Scheduler, clock: ManualClock, r: redis.Redis) -> None:
    """Datetimes in Lua: whole seconds have no fraction, other ms six digits, across leap days and years."""
    at = [
        datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC),
        datetime(2100, 3, 1, 0, 0, 0, 1000, tzinfo=UTC),
        datetime(2038, 1, 19, 3, 14, 8, 999000, tzinfo=UTC),
        datetime(2199, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
    ]
    p = pinned.core.keys.partitions[0]
    for i, when in enumerate(at):
        due_ms = round(when.timestamp() * 1000)
        clock.ms = due_ms - 500  # a schedule may be at most ten years ahead: the clock goes there first
        (nid,) = pinned.schedule([f"t{i}"], "When", "m", at=when).notification_ids
        clock.ms = due_ms + i * 333  # sent with and without a fraction too
        _, ran = run_tick(pinned)
        assert "publish_inbox" not in ran
        n, expected = as_sent(pinned, nid)
        assert n.scheduled_at == when
        assert entries(r, p, f"t{i}")[0][1][b"n"] == expected


def test_a_claim_ahead_delivers_until_the_first_one_it_would_have_to_claim(
    pinned: Scheduler, clock: ManualClock, r: redis.Redis
) -> None:
    """A worker draining websocket-only notifications sends a claim ahead in the same round trip; it delivers
    what the claim may, stops at the first it would have to claim (due order, urgent first), and holds nothing."""
    core, p = pinned.core, pinned.core.keys.partitions[0]
    first = pinned.schedule(["a1", "a2", "a3"], "Ahead", "m", delay=0.01).notification_ids
    (paged,) = pinned.schedule(["pg"], "Pager", "m", delay=0.02, channels=["pager"]).notification_ids
    later = pinned.schedule(["b1", "b2"], "After", "m", delay=0.03).notification_ids
    clock.advance(100)
    claimed = pinned.run(core.claim(p, 2, 60_000, PLAN, ahead=1))
    assert [i for i, _, _ in claimed.sent] == first and claimed.notifications == []  # 2, then 1 and a halt
    assert {int(m) for m in r.zrange(p.due, 0, -1)} == {-first[0], paged, -later[0]} - {-first[0]}
    assert r.zcard(p.processing) == 0
    claimed = pinned.run(core.claim(p, 2, 60_000, PLAN, ahead=1))  # the pager one is claimed; the next ahead
    assert [n.id for n in claimed.notifications] == [paged] and [i for i, _, _ in claimed.sent] == later
    assert [int(m) for m in r.zrange(p.processing, 0, -1)] == [paged]

    (urgent,) = pinned.schedule(
        ["u"], "Urgent", "m", delay=0.05, priority="urgent", channels=["pager"]
    ).notification_ids
    normal = [pinned.schedule([who], "Normal", "m", delay=0.01 * i).notification_ids[0] for i, who in enumerate("xy")]
    pinned.redis.hset(p.state, str(normal[1]), "{not json")  # would be claimed (to fail): an ahead claim stops
    clock.advance(100)
    steps = next(core.claim(p, 5, 60_000, PLAN, ahead=1))
    ahead_only = [s for s in steps if isinstance(s, Script)][1]
    reply = ClaimReply.read(pinned.scripts["claim"](keys=ahead_only.keys, args=ahead_only.args))
    assert (reply.sent, reply.claimed) == ([], []), "the urgent one it cannot deliver comes first: nothing moves"
    assert pinned.status(urgent).scheduled_status == "pending"
    claimed = pinned.run(core.claim(p, 1, 60_000, PLAN, ahead=1))
    assert [n.id for n in claimed.notifications] == [urgent]
    assert [i for i, _, _ in claimed.sent] == normal[:1], "then the normal ones, up to the unreadable state"
    assert r.zscore(p.due, str(normal[1])) is not None and claimed.poisoned == [], "left due, for a claim to fail"


def test_a_worker_draining_a_backlog_claims_ahead_and_delivers_each_once(
    pinned: Scheduler, clock: ManualClock, r: redis.Redis
) -> None:
    paged: list[Notification] = []

    def make(connection: aioredis.Redis) -> Delivery:
        inbox = InboxDelivery(connection, pinned.core.keys, clock=clock)
        return Router({"websocket": inbox, "pager": CallableDelivery(paged.append)}, default=("websocket",))

    early = pinned.schedule([f"e{i}" for i in range(25)], "Backlog", "m", delay=0.01).notification_ids
    (paged_id,) = pinned.schedule(["pg"], "Pager", "m", delay=0.02, channels=["pager"]).notification_ids
    late = pinned.schedule([f"l{i}" for i in range(25)], "Backlog", "m", delay=0.03).notification_ids
    clock.advance(100)

    async def drain() -> list[str]:
        connection = Counting(**{k: v for k, v in pinned.redis.connection_pool.connection_kwargs.items() if k in KW})
        scheduler = AsyncScheduler(connection, core=pinned.core)
        worker = Worker(scheduler, make(connection), batch=10)
        try:
            for _ in range(8):
                await worker.tick()
        finally:
            await scheduler.close()
        return connection.ran

    ran = asyncio.run(drain())
    assert ran.count("claim") > 8, "claims went ahead while the batches were full and delivered in Lua"
    assert [n.id for n in paged] == [paged_id] and ran.count("ack") == 1 and "publish_inbox" not in ran
    p = pinned.core.keys.partitions[0]
    for nid in [*early, *late]:
        n, expected = as_sent(pinned, nid)
        ((_, fields),) = entries(r, p, n.recipient)
        assert fields[b"n"] == expected and n.attempts == 1
    totals = pinned.stats().totals
    assert (totals["claimed"], totals["sent"]) == (51, 51)
    assert r.zcard(p.processing) == 0 and pinned.stats().counts["pending"] == 0
