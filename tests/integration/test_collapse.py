"""Collapse keys on a real server: scheduling with a collapse key leaves each recipient one pending notification
per key, the newest; the one it replaces ends ``collapsed`` in the same schedule.lua call, whether it was a
record of its own or a recipient still waiting inside a many-recipient call. Resent calls collapse nothing twice;
purge drops a collapse index entry with the record it names."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from tests.conftest import ManualClock
from tests.integration.http_support import TestClient, Tokens, client, schedule_body, settings, tokens
from tests.integration.test_cli import ZSCHED
from zsched import Core, Keyspace, Retention, Scheduler
from zsched.engine import Script
from zsched.engine.replies import ScheduleReply
from zsched.errors import FieldError, NotPendingError
from zsched.models import ms_to_datetime

__all__ = ["client", "settings", "tokens"]  # fixtures used by name

LEASE_MS = 10_000
RETENTION = Retention(sent_ms=5_000, cancelled_ms=3_000, failed_ms=5_000)


@pytest.fixture
def zs(redis_url: str, keyspace: Keyspace, clock: ManualClock) -> Iterator[Scheduler]:
    scheduler = Scheduler(redis.Redis.from_url(redis_url), core=Core(keyspace, clock=clock, retention=RETENTION))
    yield scheduler
    scheduler.close()


def statuses(zs: Scheduler, ids: list[int]) -> list[str]:
    return [zs.status(i).scheduled_status for i in ids]


def claim(zs: Scheduler, limit: int = 100) -> list[int]:
    p = zs.core.keys.partitions[0]
    return sorted(n.id for n in zs.run(zs.core.claim(p, limit, LEASE_MS)).notifications)


def test_the_newest_single_notification_per_recipient_and_key_stays_pending(zs: Scheduler, clock: ManualClock) -> None:
    (first,) = zs.schedule(
        ["ann"], "Meeting in 10", "m", delay=60, collapse_key="meeting:7", created_by="cal"
    ).notification_ids
    (other,) = zs.schedule(["ann"], "Other", "m", delay=60, collapse_key="meeting:8").notification_ids
    (plain,) = zs.schedule(["ann"], "No key", "m", delay=60).notification_ids
    (bo,) = zs.schedule(["bo"], "Bo's", "m", delay=60, collapse_key="meeting:7").notification_ids
    clock.advance(1_000)
    (second,) = zs.schedule(
        ["ann"], "Meeting in 5", "m", delay=30, collapse_key="meeting:7", priority="urgent"
    ).notification_ids
    assert statuses(zs, [first, other, plain, bo, second]) == ["collapsed", "pending", "pending", "pending", "pending"]
    n = zs.status(first)
    assert n.collapsed_at == ms_to_datetime(clock.ms) and n.collapse_key == "meeting:7" and n.attempts == 0
    p = zs.core.keys.partitions[0]
    r = zs.redis
    assert r.zscore(p.collapsed, first) == clock.ms + RETENTION.cancelled_ms
    assert r.hget(p.pending_by_creator, "cal") is None, "a collapsed notification is no longer held by its creator"
    clock.advance(60_000)
    assert claim(zs) == sorted([other, plain, bo, second])
    stats = zs.stats()
    assert (stats.counts["collapsed"], stats.counts["pending"], stats.totals["collapsed"]) == (1, 0, 1)
    assert [x.id for x in zs.list_for("ann", status="collapsed").items] == [first]
    with pytest.raises(NotPendingError):
        zs.cancel(first)


def test_calls_collapse_the_recipients_they_share_across_calls(zs: Scheduler, clock: ManualClock) -> None:
    first = zs.schedule(["a", "b", "c"], "v1", "m", delay=10, collapse_key="digest").notification_ids
    (single,) = zs.schedule(["d"], "v1", "m", delay=10, collapse_key="digest").notification_ids
    second = zs.schedule(["b", "c", "d", "e"], "v2", "m", delay=10, collapse_key="digest").notification_ids
    assert statuses(zs, first) == ["pending", "collapsed", "collapsed"]
    assert statuses(zs, [single, *second]) == ["collapsed", "pending", "pending", "pending", "pending"]
    assert zs.stats().counts["pending"] == 5
    third = zs.schedule(["a", "e"], "v3", "m", delay=10, collapse_key="digest").notification_ids
    assert statuses(zs, [first[0], second[3], *third]) == ["collapsed", "collapsed", "pending", "pending"]
    p = zs.core.keys.partitions[0]
    assert int(zs.redis.get(p.call_pending) or 0) == 3 + 2  # b, c, d of the second call; a, e of the third
    clock.advance(10_000)
    got = claim(zs)
    assert got == sorted([*second[:3], *third])
    assert {zs.status(i).title for i in got} == {"v2", "v3"}
    assert zs.stats().counts | {"processing": 0} == {
        "pending": 0,
        "processing": 0,
        "sent": 0,
        "cancelled": 0,
        "failed": 0,
        "expired": 0,
        "collapsed": 5,
        "throttled": 0,
        "skipped": 0,
    }


def test_only_a_pending_notification_collapses(zs: Scheduler, clock: ManualClock) -> None:
    (claimed,) = zs.schedule(["ann"], "t", "m", delay=1, collapse_key="k").notification_ids
    rescheduled = zs.schedule(["ann", "bo"], "t", "m", delay=60, collapse_key="j").notification_ids
    zs.reschedule(rescheduled[0], delay=120)  # out of its call, into a record of its own, still pending
    clock.advance(1_000)
    assert claim(zs) == [claimed]
    (after,) = zs.schedule(["ann"], "t", "m", delay=1, collapse_key="k").notification_ids
    again = zs.schedule(["ann", "bo"], "t", "m", delay=60, collapse_key="j", priority="high").notification_ids
    assert statuses(zs, [claimed, after]) == ["processing", "pending"]
    assert statuses(zs, [*rescheduled, *again]) == ["collapsed", "collapsed", "pending", "pending"]
    p = zs.core.keys.partitions[0]
    assert zs.redis.zrange(p.due_for("high"), 0, -1) == [f"-{again[0]}".encode()]
    assert zs.stats().counts["pending"] == 3  # after, and the new call's two (the old call waits with none left)
    clock.advance(120_000)
    assert claim(zs) == sorted([after, *again])


def test_a_resent_schedule_call_collapses_nothing_twice(zs: Scheduler) -> None:
    (old,) = zs.schedule(["ann"], "t", "m", delay=5, collapse_key="k").notification_ids
    (step,) = next(zs.core.schedule(["ann", "bo"], "t", "m", delay=5, collapse_key="k"))
    assert isinstance(step, Script)
    first = ScheduleReply.read(zs.scripts[step.name](keys=step.keys, args=step.args, client=zs.redis))
    again = ScheduleReply.read(zs.scripts[step.name](keys=step.keys, args=step.args, client=zs.redis))
    assert first == again and statuses(zs, [old, *first.ids]) == ["collapsed", "pending", "pending"]
    assert zs.stats().totals["collapsed"] == 1 and zs.stats().counts["pending"] == 2


def test_purge_drops_the_index_entry_with_the_record_it_names(zs: Scheduler, clock: ManualClock) -> None:
    p = zs.core.keys.partitions[0]
    r = zs.redis
    (old,) = zs.schedule(["ann"], "t", "m", delay=1, collapse_key="k").notification_ids
    new = zs.schedule(
        ["ann", "bo"], "t", "m", delay=1, collapse_key="k", data={"collapse_key": "decoy"}
    ).notification_ids
    assert r.hgetall(p.collapse) == {b"ann k": str(new[0]).encode(), b"bo k": str(new[1]).encode()}
    clock.advance(RETENTION.cancelled_ms)
    assert zs.run(zs.core.purge(p)) == 1  # the collapsed one; its index entry names the newer one and stays
    assert len(r.hgetall(p.collapse)) == 2
    claim(zs)
    zs.run(zs.core.ack(p, new))
    clock.advance(RETENTION.sent_ms)
    assert zs.run(zs.core.purge(p)) == 2
    assert r.hgetall(p.collapse) == {}
    assert [r.exists(key) for key in (p.state, p.notifications, p.payload_refs)] == [0, 0, 0]
    with pytest.raises(Exception, match="not found|no notification"):
        zs.status(old)


def test_a_collapse_key_is_checked(zs: Scheduler) -> None:
    for bad in ("", "x" * 201, "tab\there", "nul\x00", 7):
        with pytest.raises(FieldError, match="collapse_key must be 1 to 200 characters with no control characters"):
            zs.schedule(["ann"], "t", "m", delay=1, collapse_key=bad)  # type: ignore[arg-type]


def test_http_schedules_with_expiry_and_collapse_and_shows_the_new_statuses(client: TestClient, tokens: Tokens) -> None:
    me = tokens.headers("alice", scheme="Bearer")
    body = schedule_body(["alice"], collapse_key="standup", expires_at=None, on_late="skip", late_after_s=90)
    first = client.post("/api/notifications/schedule/", headers=me, json=body)
    assert first.status_code == 201, first.text
    (old,) = first.json()["notification_ids"]
    view = client.get(f"/api/notifications/{old}/", headers=me).json()
    assert (view["on_late"], view["late_after_ms"], view["collapse_key"]) == ("skip", 90_000, "standup")
    second = client.post(
        "/api/notifications/schedule/", headers=me, json=schedule_body(["alice"], collapse_key="standup")
    )
    (new,) = second.json()["notification_ids"]
    status = client.get(f"/api/notifications/{old}/schedule_status/", headers=me).json()
    assert status["scheduled_status"] == "collapsed"
    view = client.get(f"/api/notifications/{old}/", headers=me).json()
    assert view["collapsed_at"] is not None and view["deliveries"] == {}
    listed = client.get("/api/notifications/?status=collapsed", headers=me).json()
    assert [n["id"] for n in listed["items"]] == [old]
    assert client.get(f"/api/notifications/{new}/", headers=me).json()["scheduled_status"] == "pending"
    bad = client.post(
        "/api/notifications/schedule/", headers=me, json=schedule_body(["alice"], expires_at="2020-01-01T00:00:00Z")
    )
    assert bad.status_code == 422 and bad.json()["field"] == "expires_at", bad.text
    bad = client.post("/api/notifications/schedule/", headers=me, json=schedule_body(["alice"], on_late="later"))
    assert bad.status_code == 422 and "on_late must be one of send, skip" in bad.json()["detail"], bad.text


def test_expiry_must_come_after_the_due_time_in_both_forms(zs: Scheduler, clock: ManualClock) -> None:
    now = ms_to_datetime(clock.ms)
    with pytest.raises(FieldError, match="expires_at must be after"):
        zs.schedule(["ann"], "t", "m", delay=timedelta(minutes=10), expires_at=now + timedelta(minutes=5))
    zs.schedule(["ann"], "t", "m", delay=timedelta(minutes=10), expires_at=now + timedelta(minutes=11))


def test_a_call_spanning_partitions_collapses_in_each_at_commit(redis_url: str, prefix: str) -> None:
    """Each partition's part collapses its own recipients' older notifications when it is committed."""
    core = Core(Keyspace(prefix, partitions=4))
    with Scheduler(redis.Redis.from_url(redis_url), core=core) as zs:
        people = [f"user-{i}" for i in range(12)]
        assert len({core.keys.for_recipient(p).index for p in people}) > 1
        first = zs.schedule(people, "v1", "m", delay=60, collapse_key="digest").notification_ids
        (lone,) = zs.schedule(["user-3"], "v1", "m", delay=60, collapse_key="digest").notification_ids
        assert zs.status(first[3]).scheduled_status == "collapsed"
        second = zs.schedule(people[:6], "v2", "m", delay=60, collapse_key="digest").notification_ids
        assert statuses(zs, first) == ["collapsed"] * 6 + ["pending"] * 6
        assert statuses(zs, [lone, *second]) == ["collapsed"] + ["pending"] * 6
        assert zs.stats().counts["pending"] == 12 and zs.stats().counts["collapsed"] == 7


def test_the_cli_schedules_with_a_collapse_key_and_expiry_and_lists_by_the_new_statuses(
    redis_url: str, prefix: str
) -> None:
    target = ["--redis-url", redis_url, "--prefix", prefix]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "ZSCHED_REDIS_URL": ""}
        return subprocess.run([*ZSCHED, *args, *target], capture_output=True, text=True, timeout=60, env=env)

    base = ["schedule", "--to", "ann", "--title", "t", "--message", "m", "--in", "1h", "--json"]
    first = run(*base, "--collapse-key", "digest", "--on-late", "skip", "--late-after", "5m")
    assert first.returncode == 0, first.stderr
    (old,) = json.loads(first.stdout)["notification_ids"]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    second = run(*base, "--collapse-key", "digest", "--expires-at", tomorrow)
    assert second.returncode == 0, second.stderr
    listed = run("list", "ann", "--status", "collapsed")
    assert listed.returncode == 0 and listed.stdout.split()[:2] == [str(old), "collapsed"], listed.stdout
    shown = json.loads(run("status", str(old), "--json").stdout)
    assert (shown["on_late"], shown["late_after_ms"], shown["collapse_key"]) == ("skip", 300_000, "digest")
    assert "collapsed_at" in run("status", str(old)).stdout
    bad = run(*base, "--expires-at", "2020-01-01T00:00:00Z")
    assert bad.returncode == 2 and "expires_at must be" in bad.stderr, bad.stderr
    stats = json.loads(run("stats", "--json").stdout)
    assert stats["counts"]["collapsed"] == 1 and stats["totals"]["collapsed"] == 1
