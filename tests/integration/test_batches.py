"""Whole-call operations on a real server: a schedule call's batch_id names all its notifications, and cancel,
reschedule and a status summary act on every one still pending in one request (one script call per partition):
a pending call moves or leaves due as a whole, records of its own (taken out, claimed, retried) one by one."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis

from tests.conftest import ManualClock
from tests.integration.http_support import TestClient, Tokens, client, future, schedule_body, settings, tokens
from tests.integration.test_cli import ZSCHED
from zsched import Core, Keyspace, PastScheduleError, Scheduler
from zsched.engine import Script
from zsched.engine.replies import BatchReply
from zsched.errors import FieldError
from zsched.models import ms_to_datetime

__all__ = ["client", "settings", "tokens"]  # fixtures used by name

LEASE_MS = 10_000


@pytest.fixture
def zs(redis_url: str, keyspace: Keyspace, clock: ManualClock) -> Iterator[Scheduler]:
    scheduler = Scheduler(redis.Redis.from_url(redis_url), core=Core(keyspace, clock=clock))
    yield scheduler
    scheduler.close()


def claim(zs: Scheduler, limit: int = 100) -> list[int]:
    p = zs.core.keys.partitions[0]
    return sorted(n.id for n in zs.run(zs.core.claim(p, limit, LEASE_MS)).notifications)


def test_a_call_reschedules_and_cancels_as_a_whole(zs: Scheduler, clock: ManualClock) -> None:
    people = [f"u{i}" for i in range(6)]
    result = zs.schedule(people, "t", "m", delay=10, priority="high", created_by="billing")
    ids = result.notification_ids
    assert result.batch_id == f"{ids[0]}x6"
    (other,) = zs.schedule(["u0"], "not in the batch", "m", delay=10).notification_ids
    zs.reschedule(ids[1], delay=5)  # out of its call: a pending record of its own
    zs.cancel(ids[2])
    clock.advance(5_000)
    assert claim(zs) == [ids[1]]

    moved = zs.reschedule_batch(result.batch_id, delay=60)
    assert (moved.changed, moved.not_pending, moved.missing) == (4, 2, 0)
    p = zs.core.keys.partitions[0]
    r = zs.redis
    assert r.zscore(p.due_for("high"), f"-{ids[0]}") == clock.ms + 60_000, "the call moved as one due entry"
    for i in (0, 3, 4, 5):
        assert zs.status(ids[i]).scheduled_at == ms_to_datetime(clock.ms + 60_000)
    assert zs.status(other).scheduled_at == ms_to_datetime(clock.ms + 5_000), "another call does not move"
    summary = zs.batch_status(result.batch_id)
    assert summary.count == 6 and summary.counts == summary.counts | {"pending": 4, "processing": 1, "cancelled": 1}

    gone = zs.cancel_batch(result.batch_id)
    assert (gone.changed, gone.not_pending, gone.missing) == (4, 2, 0)
    assert [zs.status(i).scheduled_status for i in ids] == ["cancelled", "processing", *["cancelled"] * 4]
    assert r.hlen(p.calls) == 0 and r.zcard(p.due_for("high")) == 0, "the call left due at once"
    assert int(r.get(p.call_pending) or 0) == 0 and r.hget(p.pending_by_creator, "billing") == b"1"
    stats = zs.stats()
    assert stats.counts["pending"] == 1 and stats.counts["cancelled"] == 5 and stats.totals["cancelled"] == 5
    again = zs.cancel_batch(result.batch_id)
    assert (again.changed, again.not_pending) == (0, 6)
    clock.advance(60_000)
    assert claim(zs) == [other], "nothing of the cancelled call is claimed"


def test_a_resent_batch_step_answers_its_first_outcome(zs: Scheduler) -> None:
    batch = zs.schedule(["a", "b", "c"], "t", "m", delay=10).batch_id
    for make in (lambda: zs.core.cancel_batch(batch), lambda: zs.core.reschedule_batch(batch, delay=20)):
        (step,) = next(make())
        assert isinstance(step, Script)
        first = BatchReply.read(zs.scripts[step.name](keys=step.keys, args=step.args, client=zs.redis))
        again = BatchReply.read(zs.scripts[step.name](keys=step.keys, args=step.args, client=zs.redis))
        assert first == again
    assert zs.batch_status(batch).counts["cancelled"] == 3 and zs.stats().totals["cancelled"] == 3


def test_a_reschedule_into_the_past_moves_nothing(zs: Scheduler, clock: ManualClock) -> None:
    batch = zs.schedule(["a", "b"], "t", "m", delay=10).batch_id
    with pytest.raises(PastScheduleError):
        zs.reschedule_batch(batch, at=ms_to_datetime(clock.ms - 1_000))
    first = int(batch.split("x")[0])
    assert zs.status(first).scheduled_at == ms_to_datetime(clock.ms + 10_000)


def test_a_single_recipient_batch_and_bad_batch_ids(zs: Scheduler) -> None:
    result = zs.schedule(["solo"], "t", "m", delay=10)
    assert result.batch_id == f"{result.notification_ids[0]}x1"
    assert zs.reschedule_batch(result.batch_id, delay=timedelta(minutes=5)).changed == 1
    assert zs.cancel_batch(result.batch_id).changed == 1
    for bad in ("", "12", "x3", "1x0", "1x20000", "1x1-1x1", "abc", "1x2-", f"{2**60}x2", "0x1", "-1x1"):
        with pytest.raises(FieldError, match="batch_id must be what a schedule call returned"):
            zs.batch_status(bad)
    assert zs.cancel_batch("999999x3").missing == 3


def test_only_for_changes_just_what_that_user_receives_and_leaves_the_call_to_the_others(
    zs: Scheduler, clock: ManualClock
) -> None:
    result = zs.schedule(["a", "b", "c"], "t", "m", delay=10, created_by="ops")
    change = zs.run(zs.core.cancel_batch(result.batch_id, only_for="b"))
    assert (change.changed, change.not_pending, change.missing) == (1, 0, 2)
    moved = zs.run(zs.core.reschedule_batch(result.batch_id, delay=1, only_for="c"))
    assert (moved.changed, moved.missing) == (1, 2)  # a and b are not c's to see
    summary = zs.run(zs.core.batch_status(result.batch_id, only_for="a"))
    assert summary.counts["pending"] == 1 and summary.count == 1
    clock.advance(1_000)
    assert claim(zs) == [result.notification_ids[2]]
    clock.advance(9_000)
    assert claim(zs) == [result.notification_ids[0]]


def test_a_call_spanning_partitions_is_one_batch(redis_url: str, prefix: str) -> None:
    core = Core(Keyspace(prefix, partitions=4))
    with Scheduler(redis.Redis.from_url(redis_url), core=core) as zs:
        people = [f"user-{i}" for i in range(20)]
        result = zs.schedule(people, "t", "m", delay=60)
        parts = result.batch_id.split("-")
        assert len(parts) > 1 and sum(int(p.split("x")[1]) for p in parts) == 20
        assert zs.batch_status(result.batch_id).counts["pending"] == 20
        assert zs.reschedule_batch(result.batch_id, delay=120).changed == 20
        assert zs.cancel_batch(result.batch_id).changed == 20
        assert zs.stats().counts["cancelled"] == 20 and zs.stats().counts["pending"] == 0
        again = zs.schedule(people, "t", "m", delay=60, idempotency_key="k")
        assert zs.schedule(people, "t", "m", delay=60, idempotency_key="k").batch_id == again.batch_id


def test_http_batch_status_reschedule_and_cancel(client: TestClient, tokens: Tokens) -> None:
    service = tokens.service()
    r = client.post("/api/notifications/schedule/", headers=service, json=schedule_body(["ann", "bo", "cy"]))
    assert r.status_code == 201, r.text
    batch = r.json()["batch_id"]
    url = f"/api/batches/{batch}/"
    got = client.get(url, headers=service).json()
    assert got["count"] == 3 and got["counts"]["pending"] == 3
    bo = tokens.headers("bo")
    assert client.get(url, headers=bo).json()["count"] == 1, "a recipient counts only their own"
    assert client.get(url, headers=tokens.headers("stranger")).status_code == 404
    moved = client.patch(url, headers=service, json={"scheduled_at": future(7200)})
    assert moved.status_code == 200 and moved.json()["changed"] == 3, moved.text
    mine = client.delete(url, headers=bo).json()
    assert (mine["changed"], mine["missing"]) == (1, 2)
    rest = client.delete(url, headers=service).json()
    assert (rest["changed"], rest["not_pending"]) == (2, 1)
    assert client.get(url, headers=service).json()["counts"]["cancelled"] == 3
    bad = client.get("/api/batches/nope/", headers=service)
    assert bad.status_code == 404 and bad.json()["field"] == "batch_id", bad.text
    past = client.patch(url, headers=service, json={"scheduled_at": "2020-01-01T00:00:00Z"})
    assert past.status_code == 422 and past.json()["field"] == "scheduled_at", past.text


def test_the_cli_acts_on_a_batch(redis_url: str, prefix: str) -> None:
    target = ["--redis-url", redis_url, "--prefix", prefix]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "ZSCHED_REDIS_URL": ""}
        return subprocess.run([*ZSCHED, *args, *target], capture_output=True, text=True, timeout=60, env=env)

    made = run("schedule", "--to", "a", "--to", "b", "--title", "t", "--message", "m", "--in", "1h", "--json")
    assert made.returncode == 0, made.stderr
    answer = json.loads(made.stdout)
    batch = answer["batch_id"]
    assert answer["batch_ids"] == [batch]
    human = run("schedule", "--to", "c", "--title", "t", "--message", "m", "--in", "1h").stdout
    assert "batch id: " in human and "x1 (zsched batch status|cancel|reschedule)" in human, human
    assert run("batch", "status", batch).stdout.strip() == f"batch {batch}: 2 notification(s): pending 2"
    moved = run("batch", "reschedule", batch, "--in", "2h")
    assert moved.returncode == 0 and "2 rescheduled" in moved.stdout, moved.stderr
    gone = json.loads(run("batch", "cancel", batch, "--json").stdout)
    assert (gone["changed"], gone["not_pending"], gone["missing"]) == (2, 0, 0)
    bad = run("batch", "status", "nope")
    assert bad.returncode == 2 and "batch_id must be" in bad.stderr
