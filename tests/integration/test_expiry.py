"""Expiry on a real server: a notification claimed at or after its ``expires_at``, or (``on_late="skip"``) more
than ``late_after`` past its due time, ends ``expired`` inside claim.lua and reaches no channel; single and
many-recipient calls, retries, the in-claim inbox path and the Python delivery path of a real worker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
import redis.asyncio as aioredis

from tests.conftest import ManualClock
from zsched import AsyncScheduler, Scheduler
from zsched.delivery import CallableDelivery, InboxDelivery, Router, Worker
from zsched.errors import FieldError
from zsched.models import Notification, ms_to_datetime

LEASE_MS = 10_000


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def claim(zs: Scheduler, limit: int = 100) -> list[int]:
    p = zs.core.keys.partitions[0]
    return [n.id for n in zs.run(zs.core.claim(p, limit, LEASE_MS)).notifications]


def test_a_single_notification_claimed_after_expires_at_is_expired_not_claimed(
    pinned: Scheduler, clock: ManualClock, r: redis.Redis
) -> None:
    until = ms_to_datetime(clock.ms + 5_000)
    (late,) = pinned.schedule(
        ["ann"], "Meeting in 5 minutes", "m", delay=1, expires_at=until, created_by="cal"
    ).notification_ids
    (fresh,) = pinned.schedule(
        ["bo"], "Later", "m", delay=1, expires_at=ms_to_datetime(clock.ms + 60_000)
    ).notification_ids
    assert pinned.status(late).expires_at == until
    clock.advance(5_000)  # an outage: the claim comes exactly at expires_at
    assert claim(pinned) == [fresh]
    n = pinned.status(late)
    assert (n.scheduled_status, n.attempts, n.expired_at) == ("expired", 0, ms_to_datetime(clock.ms))
    p = pinned.core.keys.partitions[0]
    assert r.zscore(p.expired, late) == clock.ms + pinned.core.retention.cancelled_ms
    assert r.hget(p.pending_by_creator, "cal") is None, "an expired notification is no longer held by its creator"
    stats = pinned.stats()
    assert stats.counts["expired"] == 1 and stats.counts["pending"] == 0 and stats.counts["processing"] == 1
    assert stats.totals["expired"] == 1 and stats.totals["claimed"] == 1
    assert [x.id for x in pinned.list_for("ann", status="expired").items] == [late]
    with pytest.raises(Exception, match="expired"):
        pinned.cancel(late)


def test_a_many_recipient_call_expires_once_for_all_its_recipients(
    pinned: Scheduler, clock: ManualClock, r: redis.Redis
) -> None:
    people = [f"u{i}" for i in range(7)]
    ids = pinned.schedule(people, "t", "m", delay=1, expires_at=ms_to_datetime(clock.ms + 2_000)).notification_ids
    pinned.cancel(ids[2])  # one taken out of its call on its own first: it stays cancelled
    clock.advance(3_000)
    assert claim(pinned, limit=4) == []  # expired ones count against the limit: four this time
    p = pinned.core.keys.partitions[0]
    assert r.zcard(p.expired) == 4
    assert claim(pinned, limit=4) == []
    assert [pinned.status(i).scheduled_status for i in ids] == ["expired"] * 2 + ["cancelled"] + ["expired"] * 4
    assert r.hlen(p.calls) == 0 and r.zcard(p.due) == 0 and int(r.get(p.call_pending) or 0) == 0
    assert pinned.stats().counts == pinned.stats().counts | {"expired": 6, "cancelled": 1, "pending": 0}


def test_a_call_not_yet_expired_is_claimed_as_usual(pinned: Scheduler, clock: ManualClock) -> None:
    ids = pinned.schedule(["a", "b"], "t", "m", delay=1, expires_at=ms_to_datetime(clock.ms + 2_000)).notification_ids
    clock.advance(1_999)
    assert claim(pinned) == ids


@pytest.mark.parametrize("people", [["ann"], ["ann", "bo", "cy"]])
def test_on_late_skip_expires_what_is_claimed_later_than_late_after(
    pinned: Scheduler, clock: ManualClock, people: list[str]
) -> None:
    skip = pinned.schedule(people, "t", "m", delay=10, on_late="skip", late_after=30).notification_ids
    send = pinned.schedule(people, "t", "m", delay=10).notification_ids
    default = pinned.schedule(people, "t", "m", delay=10, on_late="skip").notification_ids  # a minute
    clock.advance(10_000 + 30_000)  # exactly late_after past due: still on time
    assert pinned.status(skip[0]).late_after_ms == 30_000 and pinned.status(default[0]).late_after_ms == 60_000
    assert set(claim(pinned, limit=len(people))) == set(skip)
    fail = pinned.core.fail
    pinned.run(fail(pinned.core.keys.partitions[0], [(pinned.status(i), "boom") for i in skip]))  # retry in 50 ms
    clock.advance(50 + 30_000)  # the retries are exactly 30 s late; the default's minute has run out
    assert set(claim(pinned)) == set(skip) | set(send)
    assert {pinned.status(i).scheduled_status for i in default} == {"expired"}
    pinned.run(fail(pinned.core.keys.partitions[0], [(pinned.status(i), "boom") for i in skip]))  # in 100 ms
    clock.advance(100 + 30_001)
    assert claim(pinned) == []
    for i in skip:
        n = pinned.status(i)
        assert (n.scheduled_status, n.attempts, n.on_late) == ("expired", 2, "skip")
    for i in send:
        assert pinned.status(i).on_late == "send" and pinned.status(i).late_after_ms is None


def test_a_retry_past_expires_at_expires(pinned: Scheduler, clock: ManualClock) -> None:
    (nid,) = pinned.schedule(["ann"], "t", "m", delay=1, expires_at=ms_to_datetime(clock.ms + 1_100)).notification_ids
    clock.advance(1_000)
    assert claim(pinned) == [nid]
    pinned.run(pinned.core.fail(pinned.core.keys.partitions[0], [(pinned.status(nid), "boom")]))
    clock.advance(200)
    assert claim(pinned) == []
    assert pinned.status(nid).scheduled_status == "expired"


def test_expiry_is_checked_when_the_call_is_made(zs: Scheduler) -> None:
    now = ms_to_datetime(zs.core.rough_now_ms())
    with pytest.raises(FieldError, match="expires_at must be after the notification is due"):
        zs.schedule(["a"], "t", "m", at=now + timedelta(hours=1), expires_at=now + timedelta(minutes=5))
    with pytest.raises(FieldError, match="on_late must be one of send, skip"):
        zs.schedule(["a"], "t", "m", delay=1, on_late="drop")  # type: ignore[arg-type]
    with pytest.raises(FieldError, match="late_after applies only with on_late='skip'"):
        zs.schedule(["a"], "t", "m", delay=1, late_after=5)
    with pytest.raises(FieldError, match="late_after must be a finite number"):
        zs.schedule(["a"], "t", "m", delay=1, on_late="skip", late_after=float("nan"))
    assert zs.stats().totals.get("scheduled", 0) == 0


def test_a_real_worker_sends_nothing_expired_in_the_claim_or_through_a_channel(
    pinned: Scheduler, clock: ManualClock, r: redis.Redis
) -> None:
    """The default worker delivers websocket-only notifications inside claim.lua (its inbox path); a callable
    channel goes through Python. Neither sees an expired one."""
    p = pinned.core.keys.partitions[0]
    soon = ms_to_datetime(clock.ms + 1_000)
    ws_late = pinned.schedule(["ann", "bo"], "stale", "m", delay=0.5, expires_at=soon).notification_ids
    ws_ok = pinned.schedule(["ann", "bo"], "fresh", "m", delay=0.5).notification_ids
    (cb_late,) = pinned.schedule(["cy"], "stale", "m", delay=0.5, expires_at=soon, channels=["hook"]).notification_ids
    (cb_ok,) = pinned.schedule(["cy"], "fresh", "m", delay=0.5, channels=["hook"]).notification_ids
    clock.advance(1_000)
    called: list[int] = []

    async def hook(n: Notification) -> None:
        called.append(n.id)

    async def go() -> None:
        kwargs = pinned.redis.connection_pool.connection_kwargs
        connection = aioredis.Redis(
            host=kwargs.get("host", "127.0.0.1"),
            port=kwargs.get("port", 6379),
            db=kwargs.get("db", 0),
            password=kwargs.get("password"),
        )
        scheduler = AsyncScheduler(connection, core=pinned.core)
        inbox = InboxDelivery(connection, pinned.core.keys, clock=clock)
        worker = Worker(scheduler, Router({"websocket": inbox, "hook": CallableDelivery(hook)}))
        try:
            await worker.tick()
        finally:
            await scheduler.close()

    asyncio.run(go())
    assert called == [cb_ok]
    for person in ("ann", "bo"):
        titles = [fields[b"n"] for _, fields in r.xrange(p.inbox(person))]
        assert len(titles) == 1 and b'"title":"fresh"' in titles[0]
    assert [pinned.status(i).scheduled_status for i in [*ws_late, cb_late]] == ["expired"] * 3
    assert [pinned.status(i).scheduled_status for i in [*ws_ok, cb_ok]] == ["sent"] * 3
