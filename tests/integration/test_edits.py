"""Editing content on a real server: a pending notification, or every pending one of a schedule call, gets a new
title, message or data; what left pending keeps what it had, even when it shared its call's payload, and a
notification edited alone keeps its own content. The payload is stored once per call throughout, and purge
still takes each payload with the last record that uses it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator

import msgspec
import pytest
import redis
import redis.asyncio as aioredis

from tests.conftest import ManualClock
from tests.integration.http_support import TestClient, Tokens, client, future, schedule_body, settings, tokens
from tests.integration.test_cli import ZSCHED
from zsched import AsyncScheduler, Core, Keyspace, NotFoundError, NotPendingError, Retention, Scheduler
from zsched.delivery import CallableDelivery, InboxDelivery, Router, Worker
from zsched.engine import Script
from zsched.engine.replies import BatchReply
from zsched.errors import FieldError
from zsched.models import Notification

__all__ = ["client", "settings", "tokens"]  # fixtures used by name

LEASE_MS = 10_000
RETENTION = Retention(sent_ms=1_000, cancelled_ms=1_000, failed_ms=1_000)


@pytest.fixture
def zs(redis_url: str, keyspace: Keyspace, clock: ManualClock) -> Iterator[Scheduler]:
    scheduler = Scheduler(redis.Redis.from_url(redis_url), core=Core(keyspace, clock=clock, retention=RETENTION))
    yield scheduler
    scheduler.close()


def claim(zs: Scheduler, limit: int = 100) -> list[int]:
    p = zs.core.keys.partitions[0]
    return sorted(n.id for n in zs.run(zs.core.claim(p, limit, LEASE_MS)).notifications)


def titles(zs: Scheduler, ids: list[int]) -> list[str]:
    return [zs.status(i).title for i in ids]


def test_a_single_notification_gets_new_content_and_keeps_the_rest(zs: Scheduler, clock: ManualClock) -> None:
    (nid,) = zs.schedule(
        ["ann"], "Old", "m", delay=10, type="reminder", data={"a": 1}, collapse_key="k"
    ).notification_ids
    n = zs.edit(nid, title="New", data={"b": [1, 2]})
    assert (n.title, n.message, n.data, n.type, n.collapse_key) == ("New", "m", {"b": [1, 2]}, "reminder", "k")
    clock.advance(10_000)
    assert claim(zs) == [nid]
    with pytest.raises(NotPendingError):
        zs.edit(nid, message="too late")
    with pytest.raises(NotFoundError):
        zs.edit(999_999, title="x")
    with pytest.raises(FieldError, match="give at least one of title, message and data"):
        zs.edit(nid)
    with pytest.raises(FieldError, match="title cannot be empty"):
        zs.edit(nid, title="")


def test_one_recipient_of_a_call_gets_content_of_its_own(zs: Scheduler, clock: ManualClock) -> None:
    ids = zs.schedule(["a", "b", "c"], "Call", "m", delay=10).notification_ids
    zs.reschedule(ids[2], delay=20)  # a record of its own that still shares the call's payload
    assert zs.edit(ids[1], title="Just b").title == "Just b"
    assert zs.edit(ids[2], message="Just c").message == "Just c"
    assert titles(zs, ids) == ["Call", "Just b", "Call"]
    p = zs.core.keys.partitions[0]
    r = zs.redis
    assert int(r.hget(p.payload_refs, ids[0])) == 1 and int(r.get(p.call_pending)) == 1
    assert zs.stats().counts["pending"] == 3
    clock.advance(10_000)
    assert claim(zs) == ids[:2]
    clock.advance(10_000)
    assert claim(zs) == [ids[2]]
    zs.run(zs.core.ack(p, ids))
    clock.advance(RETENTION.sent_ms)
    assert zs.run(zs.core.purge(p)) == 3
    assert r.hlen(p.notifications) == 0 and r.hlen(p.payload_refs) == 0, "every payload went with its last record"


def test_a_whole_call_is_edited_in_one_request(zs: Scheduler, clock: ManualClock) -> None:
    result = zs.schedule(["a", "b", "c", "d", "e"], "v1", "m", delay=10, priority="high")
    ids = result.notification_ids
    zs.reschedule(ids[4], delay=5)
    zs.edit(ids[3], title="d's own")
    zs.cancel(ids[2])
    clock.advance(5_000)
    assert claim(zs) == [ids[4]]  # claimed before the edit: it keeps what it was handed
    change = zs.edit_batch(result.batch_id, title="v2", data={"room": "B2"})
    assert (change.changed, change.not_pending, change.missing) == (2, 3, 0)
    assert titles(zs, ids) == ["v2", "v2", "v1", "d's own", "v1"]
    assert zs.status(ids[0]).data == {"room": "B2"} and zs.status(ids[0]).priority == "high"
    p = zs.core.keys.partitions[0]
    assert int(zs.redis.hget(p.payload_refs, ids[0])) == 2, "only a and b share the call's payload now"
    clock.advance(5_000)
    assert claim(zs) == sorted([ids[0], ids[1], ids[3]])
    assert titles(zs, ids) == ["v2", "v2", "v1", "d's own", "v1"]
    zs.run(zs.core.ack(p, ids))
    clock.advance(RETENTION.sent_ms)
    assert zs.run(zs.core.purge(p)) == 5
    r = zs.redis
    assert r.hlen(p.notifications) == 0 and r.hlen(p.payload_refs) == 0, "every payload went with its last record"


def test_a_call_nobody_shares_any_more_is_counted_and_changes_nothing(zs: Scheduler, clock: ManualClock) -> None:
    result = zs.schedule(["a", "b"], "v1", "m", delay=10)
    zs.edit(result.notification_ids[0], title="a")
    zs.cancel(result.notification_ids[1])
    change = zs.edit_batch(result.batch_id, title="v2")
    assert (change.changed, change.not_pending) == (0, 2)
    p = zs.core.keys.partitions[0]
    cid = result.notification_ids[0]
    assert not zs.redis.hexists(p.notifications, cid) and not zs.redis.hexists(p.payload_refs, cid), "nobody shares it"
    assert titles(zs, result.notification_ids) == ["a", "v1"]
    change = zs.edit_batch(result.batch_id, title="v3")
    assert (change.changed, change.not_pending) == (0, 2)


def test_an_edit_that_meets_another_reads_again(zs: Scheduler) -> None:
    result = zs.schedule(["a", "b"], "v1", "m", delay=10)
    p = zs.core.keys.partitions[0]
    holder = int(result.batch_id.split("x")[0])

    def run(step: object) -> object:
        assert isinstance(step, Script)
        return zs.scripts[step.name](keys=step.keys, args=step.args, client=zs.redis)

    op = zs.core.edit_batch(result.batch_id, title="mine")
    next(op)  # reads the call's payload
    (write,) = op.send([zs.redis.hget(p.notifications, holder)])
    zs.edit_batch(result.batch_id, message="theirs")  # another edit lands between the read and the write
    stale = run(write)
    assert BatchReply.read(stale).code == "stale"
    next_steps = op.send([stale])  # so it reads again
    assert [type(s).__name__ for s in next_steps] == ["Command"]
    (write,) = op.send([zs.redis.hget(p.notifications, holder)])
    with pytest.raises(StopIteration) as finished:
        op.send([run(write)])
    assert finished.value.value.changed == 2
    n = zs.status(result.notification_ids[0])
    assert (n.title, n.message) == ("mine", "theirs"), "neither edit lost the other's change"


def test_a_resent_edit_step_answers_its_first_outcome(zs: Scheduler) -> None:
    result = zs.schedule(["a", "b"], "v1", "m", delay=10)
    op = zs.core.edit_batch(result.batch_id, title="v2")
    (read,) = [zs.redis.hget(zs.core.keys.partitions[0].notifications, int(result.batch_id.split("x")[0]))]
    next(op)
    (step,) = op.send([read])
    assert isinstance(step, Script)
    first = BatchReply.read(zs.scripts[step.name](keys=step.keys, args=step.args, client=zs.redis))
    again = BatchReply.read(zs.scripts[step.name](keys=step.keys, args=step.args, client=zs.redis))
    assert first == again and first.changed == 2


def test_a_call_spanning_partitions_is_edited_in_each(redis_url: str, prefix: str) -> None:
    core = Core(Keyspace(prefix, partitions=4))
    with Scheduler(redis.Redis.from_url(redis_url), core=core) as zs:
        people = [f"user-{i}" for i in range(12)]
        result = zs.schedule(people, "v1", "m", delay=60)
        assert zs.edit_batch(result.batch_id, message="new").changed == 12
        assert {zs.status(i).message for i in result.notification_ids} == {"new"}


def test_http_edits_one_notification_and_a_whole_call(client: TestClient, tokens: Tokens) -> None:
    service = tokens.service()
    made = client.post("/api/notifications/schedule/", headers=service, json=schedule_body(["ann", "bo"]))
    ids, batch = made.json()["notification_ids"], made.json()["batch_id"]
    one = client.patch(f"/api/notifications/{ids[0]}/content/", headers=service, json={"title": "For ann"})
    assert one.status_code == 200 and one.json()["title"] == "For ann", one.text
    bo = tokens.headers("bo")
    all_of = client.patch(f"/api/batches/{batch}/content/", headers=bo, json={"message": "bo's own"})
    assert all_of.status_code == 200 and all_of.json()["changed"] == 1, all_of.text
    assert client.get(f"/api/notifications/{ids[1]}/", headers=bo).json()["message"] == "bo's own"
    assert client.get(f"/api/notifications/{ids[0]}/", headers=service).json()["message"] == "In 30 minutes"
    stranger = tokens.headers("mallory")
    assert (
        client.patch(f"/api/notifications/{ids[0]}/content/", headers=stranger, json={"title": "x"}).status_code == 404
    )
    assert client.patch(f"/api/batches/{batch}/content/", headers=stranger, json={"title": "x"}).status_code == 404
    empty = client.patch(f"/api/notifications/{ids[0]}/content/", headers=service, json={})
    assert empty.status_code == 422 and empty.json()["field"] == "title", empty.text
    client.delete(f"/api/notifications/{ids[0]}/cancel_scheduled/", headers=service)
    late = client.patch(f"/api/notifications/{ids[0]}/content/", headers=service, json={"title": "x"})
    assert late.status_code == 409 and late.json()["scheduled_status"] == "cancelled", late.text
    assert future()


def test_the_cli_edits_one_notification_and_a_batch(redis_url: str, prefix: str) -> None:
    target = ["--redis-url", redis_url, "--prefix", prefix]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "ZSCHED_REDIS_URL": ""}
        return subprocess.run([*ZSCHED, *args, *target], capture_output=True, text=True, timeout=60, env=env)

    made = json.loads(
        run("schedule", "--to", "a", "--to", "b", "--title", "t", "--message", "m", "--in", "1h", "--json").stdout
    )
    first = made["notification_ids"][0]
    edited = json.loads(run("edit", str(first), "--title", "For a", "--data", '{"room": "B2"}', "--json").stdout)
    assert (edited["title"], edited["data"], edited["message"]) == ("For a", {"room": "B2"}, "m")
    batch = run("batch", "edit", made["batch_id"], "--message", "moved to B3")
    assert batch.returncode == 0 and "1 edited, 1 no longer pending" in batch.stdout, batch.stdout + batch.stderr
    nothing = run("edit", str(first))
    assert nothing.returncode == 2 and "give at least one of title, message and data" in nothing.stderr


def test_a_worker_delivers_the_edited_content_in_the_claim_and_through_a_channel(
    zs: Scheduler, clock: ManualClock
) -> None:
    """The default worker delivers websocket-only notifications inside claim.lua; a callable channel goes through
    Python. Both send what the notification says after the edit."""
    ids = zs.schedule(["a", "b", "c"], "v1", "m", delay=1).notification_ids
    (hooked,) = zs.schedule(["d"], "v1", "m", delay=1, channels=["hook"]).notification_ids
    zs.edit(ids[0], title="a's own")
    zs.edit_batch(f"{ids[0]}x3", title="v2")
    zs.edit(hooked, title="hooked v2")
    clock.advance(1_000)
    called: list[str] = []

    async def hook(n: Notification) -> None:
        called.append(n.title)

    async def go() -> None:
        kwargs = zs.redis.connection_pool.connection_kwargs
        connection = aioredis.Redis(
            host=kwargs.get("host", "127.0.0.1"),
            port=kwargs.get("port", 6379),
            db=kwargs.get("db", 0),
            password=kwargs.get("password"),
        )
        scheduler = AsyncScheduler(connection, core=zs.core)
        inbox = InboxDelivery(connection, zs.core.keys, clock=clock)
        try:
            await Worker(scheduler, Router({"websocket": inbox, "hook": CallableDelivery(hook)})).tick()
        finally:
            await scheduler.close()

    asyncio.run(go())
    assert called == ["hooked v2"]
    p = zs.core.keys.partitions[0]
    sent = {who: [msgspec.json.decode(f[b"n"])["title"] for _, f in zs.redis.xrange(p.inbox(who))] for who in "abc"}
    assert sent == {"a": ["a's own"], "b": ["v2"], "c": ["v2"]}
