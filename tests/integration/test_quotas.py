"""Quotas: a per-creator cap on pending notifications (counted by the scripts that move notifications in and
out of pending) and a per-call cap on the bytes a schedule call stores; a refused call writes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.conftest import ManualClock
from tests.helpers import Recorder, tick
from tests.integration.http_support import TestClient, Tokens, schedule_body
from zsched import Core, Keyspace, Scheduler
from zsched.engine import requeue_dead
from zsched.errors import CallTooLargeError, PendingLimitError
from zsched.settings import Settings
from zsched.web.app import create_app


def _keys(zs: Scheduler, prefix: str) -> dict[bytes, bytes]:
    return {k: zs.redis.dump(k) or b"" for k in zs.redis.scan_iter(match=f"{prefix}:*")}


def _held(zs: Scheduler, creator: str) -> int:
    return sum(int(zs.redis.hget(p.pending_by_creator, creator) or 0) for p in zs.core.keys.partitions)


@pytest.mark.parametrize("partitions", [1, 4])
def test_the_pending_cap_refuses_and_writes_nothing(
    redis_url: str, prefix: str, clock: ManualClock, partitions: int
) -> None:
    core = Core(Keyspace(prefix, partitions), clock=clock, max_pending_per_creator=10)
    zs = Scheduler(redis.Redis.from_url(redis_url), core=core)
    zs.schedule([f"u{i}" for i in range(8)], "t", "m", delay=60, created_by="billing")
    before = _keys(zs, prefix)
    with pytest.raises(PendingLimitError, match=r"creator billing has 8 pending notifications and this call adds 3"):
        zs.schedule(["a", "b", "c"], "t", "m", delay=60, created_by="billing")
    with pytest.raises(PendingLimitError, match=r"ZSCHED_MAX_PENDING_PER_CREATOR"):
        zs.schedule(["a", "b", "c"], "t", "m", delay=60, created_by="billing")  # one partition or many
    assert _keys(zs, prefix) == before
    zs.schedule(["x", "y"], "t", "m", delay=60, created_by="billing")  # exactly at the cap
    with pytest.raises(PendingLimitError, match=r"has 10 pending notifications, the most allowed"):
        zs.schedule(["z"], "t", "m", delay=60, created_by="billing")
    zs.schedule(["z"], "t", "m", delay=60, created_by="crm")  # another creator has its own count
    zs.schedule(["z"], "t", "m", delay=60)  # a library call with no creator is not counted
    zs.close()


def test_the_count_follows_notifications_out_of_and_back_into_pending(pinned: Scheduler, clock: ManualClock) -> None:
    zs = pinned
    ids = zs.schedule(["a", "b", "c", "d"], "t", "m", delay=0, created_by="billing").notification_ids
    assert _held(zs, "billing") == 4
    zs.cancel(ids[0])
    assert _held(zs, "billing") == 3
    tick(zs, Recorder(fail={ids[2], ids[3]}))  # b sent; c and d retried: still pending
    assert _held(zs, "billing") == 2
    for _ in range(3):  # every retry fails: c and d end in the dead letters
        clock.advance(10 * 60_000)
        tick(zs, Recorder(fail={ids[2], ids[3]}))
    assert zs.status(ids[2]).scheduled_status == "failed" and _held(zs, "billing") == 0
    assert zs.redis.hlen(zs.core.keys.partitions[0].pending_by_creator) == 0, "a zero count is removed"
    zs.run(requeue_dead(zs.core, [ids[2]]))
    assert _held(zs, "billing") == 1


def test_the_call_bytes_cap_refuses_before_anything_is_written(redis_url: str, prefix: str, keyspace: Keyspace) -> None:
    zs = Scheduler(redis.Redis.from_url(redis_url), core=Core(keyspace, max_call_bytes=100_000))
    data = {"blob": "x" * 10_000}
    zs.schedule([f"u{i}" for i in range(9)], "t", "m", delay=60, data=data)  # ~90 KB: allowed
    before = _keys(zs, prefix)
    with pytest.raises(CallTooLargeError, match=r"x 10 recipients\); at most 100,000 .*ZSCHED_MAX_CALL_BYTES"):
        zs.schedule([f"u{i}" for i in range(10)], "t", "m", delay=60, data=data)
    assert _keys(zs, prefix) == before
    zs.close()


@pytest.fixture
def app(redis_url: str, prefix: str) -> Iterator[TestClient]:
    settings = Settings.of(
        redis_url=redis_url, prefix=prefix, max_pending_per_creator=5, max_call_bytes=20_000, rate_per_s=1000.0
    )
    with TestClient(create_app(settings, run_worker=False)) as c:
        yield c


def test_http_answers_429_and_422_naming_the_limit(app: TestClient, redis_url: str, prefix: str) -> None:
    tokens = Tokens(redis_url, prefix)
    billing = tokens.service("billing")
    n = "/api/notifications/schedule/"
    assert app.post(n, headers=billing, json=schedule_body(["a", "b", "c", "d", "e"])).status_code == 201
    r = app.post(n, headers=billing, json=schedule_body(["f"]))
    assert r.status_code == 429 and r.json()["error"] == "too_many_pending", r.text
    assert "creator billing has 5 pending notifications, the most allowed" in r.json()["detail"]
    assert "ZSCHED_MAX_PENDING_PER_CREATOR" in r.json()["detail"]
    big = schedule_body([f"u{i}" for i in range(3)], data={"blob": "x" * 10_000})
    r = app.post(n, headers=tokens.service("crm"), json=big)
    assert r.status_code == 422 and "ZSCHED_MAX_CALL_BYTES" in r.json()["detail"], r.text
    assert r.json()["field"] == "recipients"
    tokens.redis.close()
