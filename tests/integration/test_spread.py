"""``spread`` on a real server: a call's recipients leave due a slice at a time over the window, each with its
own scheduled_at, through the claim's inbox path too; the call keeps one due entry."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ManualClock
from zsched import Scheduler
from zsched.engine.leases import InboxPlan
from zsched.errors import FieldError
from zsched.models import datetime_to_ms, ms_to_datetime


def _claim(zs: Scheduler, inbox: bool) -> list[int]:
    p = zs.core.keys.partitions[0]
    plan = InboxPlan(maxlen=100, keep_ms=3_600_000) if inbox else None
    got = zs.run(zs.core.claim(p, 1000, 30_000, plan))
    return sorted([n.id for n in got.notifications] + [i for i, _, _ in got.sent])


@pytest.mark.parametrize("inbox", [False, True], ids=["claimed", "in-claim inbox"])
def test_a_spread_call_leaves_due_a_slice_at_a_time(pinned: Scheduler, clock: ManualClock, inbox: bool) -> None:
    at = clock.ms + 1000
    people = [f"u{i}" for i in range(10)]
    ids = pinned.schedule(people, "t", "m", at=ms_to_datetime(at), spread=10).notification_ids
    p = pinned.core.keys.partitions[0]
    assert pinned.redis.zcard(p.due) == 1, "one due entry for the call"
    clock.ms = at
    assert _claim(pinned, inbox) == ids[:1]
    assert pinned.redis.zrange(p.due, 0, -1, withscores=True) == [(f"-{ids[0]}".encode(), at + 1000)]
    clock.ms = at + 5500
    assert _claim(pinned, inbox) == ids[1:6]
    clock.ms = at + 9000
    assert _claim(pinned, inbox) == ids[6:]
    assert pinned.redis.zcard(p.due) == 0
    due = [datetime_to_ms(pinned.status(i).scheduled_at) for i in ids]
    assert due == [at + 1000 * k for k in range(10)], "each one's scheduled_at is its own point in the window"
    assert pinned.stats().counts["pending"] == 0
    if inbox:  # the message the claim wrote says the same
        ((_, fields),) = pinned.redis.xrange(p.inbox("u3"))
        assert json.loads(fields[b"n"])["scheduled_at"] == ms_to_datetime(at + 3000).isoformat().replace("+00:00", "Z")


def test_a_huge_fan_out_spreads_evenly(pinned: Scheduler, clock: ManualClock) -> None:
    at = clock.ms + 1000
    ids = pinned.schedule([f"r{i}" for i in range(3000)], "t", "m", at=ms_to_datetime(at), spread=60).notification_ids
    clock.ms = at + 30_000
    got = _claim(pinned, False)
    got += _claim(pinned, False)  # the claim takes 1,000 at most
    assert got == sorted(ids[:1501]), "half the window: half the recipients (k * 20 ms <= 30 s)"
    assert pinned.stats().counts["pending"] == 1499


def test_spread_is_checked(pinned: Scheduler) -> None:
    for bad in (-1, float("nan"), 8 * 86400, "10"):
        with pytest.raises(FieldError, match="spread"):
            pinned.schedule(["a", "b"], "t", "m", delay=1, spread=bad)  # type: ignore[arg-type]
