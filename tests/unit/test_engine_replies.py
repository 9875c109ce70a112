"""The reply readers against the real Lua scripts, run under fakeredis's Lua (no server): each script's
actual reply reads into its named fields, and each refusal code becomes its exception."""

from __future__ import annotations

from collections.abc import Iterator

import fakeredis
import pytest

from zsched import Core, Keyspace, Scheduler
from zsched.engine import requeue_dead
from zsched.engine.replies import READERS, MarkDeliveredReply, PublishInboxReply, RateLimitReply
from zsched.errors import IdempotencyConflictError, NotFoundError, NotPendingError, PastScheduleError

NOW = 1_700_000_000_000


class Clock:
    def __init__(self) -> None:
        self.ms = NOW

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def zs(clock: Clock) -> Iterator[Scheduler]:
    scheduler = Scheduler(fakeredis.FakeRedis(), core=Core(Keyspace("t", 1), clock=clock))
    yield scheduler
    scheduler.close()


def test_the_lease_cycle_reads_every_reply(zs: Scheduler, clock: Clock) -> None:
    core, p = zs.core, zs.core.keys.partitions[0]
    first = zs.schedule(["alice", "bob", "carol"], "t", "m", delay=1, idempotency_key="k")
    assert first.notification_ids == [1, 2, 3] and not first.replayed
    assert zs.schedule(["alice", "bob", "carol"], "t", "m", delay=1, idempotency_key="k").replayed
    assert zs.cancel(3).scheduled_status == "cancelled"
    assert zs.reschedule(2, delay=2).scheduled_at > first.scheduled_at
    clock.ms += 2500
    claimed = zs.run(core.claim(p, 10, 1000))
    assert claimed.now_ms == clock.ms and claimed.wait_ms == -1
    assert [(n.id, n.attempts, n.scheduled_status) for n in claimed.notifications] == [
        (1, 1, "processing"),
        (2, 1, "processing"),
    ]
    two = claimed.notifications[1]
    assert zs.run(core.ack(p, [1])) == (clock.ms, 1)
    assert zs.run(core.fail(p, [(two, "boom")], {2: None})) == (0, 1)
    assert zs.run(requeue_dead(core, [2])) == [2]
    zs.run(core.claim(p, 10, 1000))
    clock.ms += 5000
    assert zs.run(core.reap(p)) == (1, 0)
    clock.ms += core.retention.cancelled_ms
    assert zs.run(core.purge(p)) == 1
    assert [n.id for n in zs.list_for("alice").items] == [1]
    assert zs.stats().counts["pending"] == 1


def test_refusals_become_their_exceptions(zs: Scheduler, clock: Clock) -> None:
    zs.schedule(["alice"], "t", "m", delay=1, idempotency_key="k")
    with pytest.raises(IdempotencyConflictError):
        zs.schedule(["alice"], "t", "other", delay=1, idempotency_key="k")
    with pytest.raises(NotFoundError):
        zs.cancel(99)
    with pytest.raises(PastScheduleError):
        zs.reschedule(1, at=zs.status(1).scheduled_at.replace(year=2020))
    zs.cancel(1)
    with pytest.raises(NotPendingError):
        zs.reschedule(1, delay=5)


def test_the_scripts_called_outside_the_engine_read_too(zs: Scheduler) -> None:
    p = zs.core.keys.partitions[0]
    zs.schedule(["alice"], "t", "m", delay=0)
    zs.run(zs.core.claim(p, 10, 1000))
    inbox = READERS["publish_inbox"].read(
        zs.scripts["publish_inbox"](
            keys=[p.op("o1"), p.inbox("alice")],
            args=[10, 60_000, str(NOW), 60_000, "PUBLISH", p.user_channel("alice"), '{"id":1}'],
        )
    )
    assert isinstance(inbox, PublishInboxReply) and len(inbox.stream_ids) == 1 and "-" in inbox.stream_ids[0]
    acked = READERS["mark_delivered"].read(zs.scripts["mark_delivered"](keys=[p.state], args=[str(NOW), "alice", 1, 9]))
    assert acked == MarkDeliveredReply(now_ms=NOW, delivered_at_ms=[NOW, -1])
    limit = READERS["rate_limit"].read(
        zs.scripts["rate_limit"](keys=["t:bucket", "t:op"], args=[str(NOW), "1.0", 2, 1, 60_000])
    )
    assert limit == RateLimitReply(allowed=True, remaining=1, retry_after_ms=0)


def test_contact_scripts_read(zs: Scheduler) -> None:
    """set_contact and erase_recipient's replies read into their fields (and the library's answers)."""
    assert zs.set_contact("alice", email="alice@example.com", phone="+14155550123").phone == "+14155550123"
    assert zs.set_contact("alice", phone=None).phone is None
    assert zs.set_contact("alice", email=None).email is None  # nothing left: the entry is gone
    assert zs.redis.hlen(zs.core.keys.partitions[0].contacts) == 0
    zs.set_contact("alice", locale="pt-BR")
    erased = zs.erase_recipient("alice")
    assert (erased.contact_removed, erased.inbox_entries_removed) == (True, 0)
    assert zs.contact("alice").locale is None
