"""Scripts on a real server: NOSCRIPT recovery, idempotency, retention, reschedule, partitions, persistence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from tests.conftest import ManualClock
from tests.helpers import Recorder, tick
from zsched import (
    Core,
    IdempotencyConflictError,
    Keyspace,
    NotFoundError,
    NotPendingError,
    PastScheduleError,
    Retention,
    Scheduler,
    ValidationError,
)
from zsched.embedded import EmbeddedServer
from zsched.models import ms_to_datetime

DAY_MS = 86_400_000


def test_noscript_after_script_flush_is_invisible(valkey: EmbeddedServer, prefix: str) -> None:
    # Only on the bundled server: SCRIPT FLUSH on the shared system Redis would disturb its other users.
    zs = Scheduler(redis.Redis.from_url(valkey.url), core=Core(Keyspace(prefix)))
    zs.schedule(["a"], "before", "flush", delay=60)
    zs.redis.script_flush()
    result = zs.schedule(["a"], "after", "flush", delay=60)
    assert zs.status(result.notification_ids[0]).title == "after"
    zs.redis.script_flush()
    assert tick(zs, Recorder()) is not None  # the asyncio face recovers too
    zs.close()


def test_idempotent_schedule_returns_the_same_ids_and_creates_nothing(zs: Scheduler) -> None:
    first = zs.schedule(["a", "b"], "Once", "only", delay=60, idempotency_key="order-42")
    again = zs.schedule(["a", "b"], "Once", "only", delay=60, idempotency_key="order-42")
    assert again.notification_ids == first.notification_ids and again.replayed and not first.replayed
    assert again.scheduled_at == first.scheduled_at
    assert zs.stats().counts["pending"] == 2
    with pytest.raises(IdempotencyConflictError, match="different request"):
        zs.schedule(["a", "b"], "Once", "changed", delay=60, idempotency_key="order-42")
    assert zs.stats().totals["scheduled"] == 2


def test_retention_expires_terminal_records_and_trims_the_index(
    redis_url: str, keyspace: Keyspace, clock: ManualClock
) -> None:
    retention = Retention(sent_ms=90 * DAY_MS, cancelled_ms=30 * DAY_MS, failed_ms=90 * DAY_MS)
    zs = Scheduler(redis.Redis.from_url(redis_url), core=Core(keyspace, retention=retention, clock=clock))
    p = keyspace.partitions[0]
    sent, cancelled, pending = (
        zs.schedule(["rita"], t, "x", delay=d).notification_ids[0]
        for t, d in (("sent", 0), ("cancelled", 60), ("pending", 200 * 86400))
    )
    tick(zs, Recorder())
    zs.cancel(cancelled)
    assert zs.redis.zscore(p.sent, sent) == clock.ms + 90 * DAY_MS
    assert zs.redis.zscore(p.cancelled, cancelled) == clock.ms + 30 * DAY_MS
    clock.advance(30 * DAY_MS)
    assert zs.run(zs.core.purge(p)) == 1
    with pytest.raises(NotFoundError):
        zs.status(cancelled)
    clock.advance(60 * DAY_MS)
    assert zs.run(zs.core.purge(p)) == 1
    assert [n.id for n in zs.list_for("rita").items] == [pending]
    assert zs.redis.zcard(p.by_recipient) == 1 and zs.redis.hlen(p.state) == 1
    assert zs.stats().totals["purged"] == 2
    zs.close()


def test_reschedule_only_while_pending(pinned: Scheduler, clock: ManualClock) -> None:
    (nid,) = pinned.schedule(["sam"], "Move", "me", delay=60).notification_ids
    moved = pinned.reschedule(nid, at=ms_to_datetime(clock.ms + 5000))
    assert moved.scheduled_at == ms_to_datetime(clock.ms + 5000)
    assert pinned.redis.zscore(pinned.core.keys.partitions[0].due, nid) == clock.ms + 5000
    with pytest.raises(PastScheduleError):
        pinned.reschedule(nid, at=ms_to_datetime(clock.ms - 1))
    pinned.cancel(nid)
    with pytest.raises(NotPendingError, match="cannot reschedule notification .* it is cancelled"):
        pinned.reschedule(nid, delay=10)
    with pytest.raises(NotFoundError):
        pinned.reschedule(999_999, delay=10)


def test_bad_input_writes_nothing(zs: Scheduler) -> None:
    bad_calls = [
        {"recipients": ["ok", ""], "title": "t", "message": "m", "delay": 5},
        {"recipients": ["ok"], "title": "t" * 201, "message": "m", "delay": 5},
        {"recipients": ["ok"], "title": "t", "message": "m", "at": datetime(2030, 1, 1)},
        {"recipients": ["ok"], "title": "t", "message": "m", "at": datetime(2001, 1, 1, tzinfo=UTC)},
        {"recipients": ["ok"], "title": "t", "message": "m", "delay": 5, "data": "not an object"},
        {"recipients": ["ok"], "title": "t", "message": "m", "delay": 5, "priority": "asap"},
    ]
    for call in bad_calls:
        with pytest.raises(ValidationError):
            zs.schedule(**call)  # type: ignore[arg-type]
    written = set(zs.redis.scan_iter(match=f"{zs.core.keys.prefix}:*")) - {zs.core.keys.layout.encode()}
    assert not written  # (the layout key records the partition count on a client's first call, bad or not)


def test_partitions_keep_a_recipient_together_and_ids_route_home(redis_url: str, prefix: str) -> None:
    zs = Scheduler(redis.Redis.from_url(redis_url), core=Core(Keyspace(prefix, partitions=4)))
    people = [f"p{i}" for i in range(40)]
    result = zs.schedule(people, "Spread", "out", delay=timedelta(minutes=1))
    assert len(set(result.notification_ids)) == 40
    for person, nid in zip(people, result.notification_ids, strict=True):
        assert zs.status(nid).recipient == person
        assert zs.core.keys.for_id(nid) is zs.core.keys.for_recipient(person)
    used = {zs.core.keys.for_recipient(p).index for p in people}
    assert len(used) == 4 and zs.stats().counts["pending"] == 40
    again = zs.schedule(people, "Spread", "out", delay=60, idempotency_key="k")
    assert (
        zs.schedule(people, "Spread", "out", delay=60, idempotency_key="k").notification_ids == again.notification_ids
    )
    zs.close()


def test_list_for_pages_with_a_cursor(zs: Scheduler) -> None:
    ids = [zs.schedule(["tess"], f"n{i}", "x", delay=60).notification_ids[0] for i in range(7)]
    zs.schedule(["tessa"], "other", "person", delay=60)  # a name with tess as its prefix stays apart
    first = zs.list_for("tess", limit=3)
    second = zs.list_for("tess", limit=3, cursor=first.next_cursor)
    third = zs.list_for("tess", limit=3, cursor=second.next_cursor)
    assert [n.id for n in first.items + second.items + third.items] == ids[::-1]
    assert third.next_cursor is None
    zs.cancel(ids[3])
    assert [n.id for n in zs.list_for("tess", status="cancelled").items] == [ids[3]]


def test_embedded_server_keeps_pending_notifications_across_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Scheduler.embedded(data) as zs:
        (nid,) = zs.schedule(["uma"], "Survive", "restart", delay=3600).notification_ids
        port = zs.server.port if zs.server else 0
        assert (data / "port").read_text().strip() == str(port)
    assert not (data / "port").exists()
    with Scheduler.embedded(data) as zs:
        assert zs.status(nid).scheduled_status == "pending"
        with Scheduler.embedded(data) as attached:  # a second user of the same folder attaches
            assert attached.server is not None and not attached.server.owned
            assert attached.status(nid).title == "Survive"
