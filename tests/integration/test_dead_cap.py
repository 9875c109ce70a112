"""The dead-letter cap (``Retention.max_dead``, ``ZSCHED_MAX_DEAD``): a failure that takes a partition's dead set
over the cap drops the oldest dead letters in the same script call, records and index entries as purge removes
them, counts them in ``dead_dropped``, and a resent call drops nothing more."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

from tests.conftest import ManualClock
from tests.helpers import Recorder, tick
from tests.integration.http_support import TestClient, Tokens
from zsched import Core, Keyspace, Retention, RetryPolicy, Scheduler
from zsched.cli import main
from zsched.connection import queue_step
from zsched.errors import NotFoundError
from zsched.models import Notification
from zsched.settings import Settings
from zsched.web.app import create_app


@pytest.fixture
def capped(redis_url: str, keyspace: Keyspace, clock: ManualClock) -> Iterator[Scheduler]:
    """No retries (one attempt), a pinned clock, and at most 2 dead letters per partition."""
    core = Core(keyspace, retry=RetryPolicy(delays_ms=()), retention=Retention(max_dead=2), clock=clock)
    scheduler = Scheduler(redis.Redis.from_url(redis_url), core=core)
    yield scheduler
    scheduler.close()


def _kill(zs: Scheduler, clock: ManualClock, ids: list[int]) -> None:
    """Deliver what is due, failing ``ids`` for good (one attempt each), a second later on the clock."""
    clock.advance(1000)
    tick(zs, Recorder(fail=set(ids)))


def _gone(zs: Scheduler, notification_id: int) -> bool:
    try:
        zs.status(notification_id)
    except NotFoundError:
        return True
    return False


def test_failures_past_the_cap_drop_the_oldest_dead_letters_with_their_index_entries(
    capped: Scheduler, clock: ManualClock
) -> None:
    p = capped.core.keys.partitions[0]
    ids = []
    for i in range(5):  # one at a time: each fails a second after the one before, so "oldest" is well defined
        ids += capped.schedule([f"r{i}"], "t", "m", delay=0, created_by="billing").notification_ids
        _kill(capped, clock, ids[-1:])
    assert [capped.status(i).scheduled_status for i in ids[3:]] == ["failed", "failed"]
    assert all(_gone(capped, i) for i in ids[:3])
    r = capped.redis
    assert [int(i) for i in r.zrange(p.failed, 0, -1)] == ids[3:]
    assert r.hlen(p.state) == 2 and r.hlen(p.notifications) == 2
    assert [m.decode().split()[0] for m in r.zrange(p.by_recipient, 0, -1)] == ["r3", "r4"]
    assert r.zcard(p.by_creator) == 2
    assert capped.list_for("r0").items == [] and len(capped.list(created_by="billing").items) == 2
    assert int(r.hget(p.counters, "dead_dropped") or 0) == 3
    stats = capped.stats()
    assert stats.totals["dead_dropped"] == 3 and stats.counts["failed"] == 2 and stats.totals["failed"] == 5


def test_a_many_recipient_call_keeps_its_payload_until_its_last_dead_letter_goes(
    capped: Scheduler, clock: ManualClock
) -> None:
    p = capped.core.keys.partitions[0]
    call = capped.schedule(["a", "b", "c"], "shared", "m", delay=0).notification_ids
    _kill(capped, clock, call)  # three fail in one call: the dead set holds 3 > 2, one goes (the lowest score)
    assert sum(_gone(capped, i) for i in call) == 1
    assert int(capped.redis.hget(p.payload_refs, str(call[0])) or 0) == 2
    later = [capped.schedule([f"x{i}"], "alone", "m", delay=0).notification_ids[0] for i in range(2)]
    _kill(capped, clock, later)  # two newer dead letters: both remaining recipients of the call go
    assert all(_gone(capped, i) for i in call)
    assert [capped.status(i).title for i in later] == ["alone", "alone"]
    r = capped.redis
    assert not r.hexists(p.payload_refs, str(call[0])) and not r.hexists(p.notifications, str(call[0]))
    assert r.hlen(p.notifications) == 2 and r.hlen(p.state) == 2
    assert int(r.hget(p.counters, "dead_dropped") or 0) == 3


def test_reap_applies_the_cap_to_leases_that_ran_out_of_attempts(capped: Scheduler, clock: ManualClock) -> None:
    core, p = capped.core, capped.core.keys.partitions[0]
    ids = capped.schedule(["u", "v", "w"], "t", "m", delay=0).notification_ids
    clock.advance(1)
    claimed = capped.run(core.claim(p, 10, 1000))
    assert sorted(n.id for n in claimed.notifications) == sorted(ids)
    clock.advance(5000)  # the worker died: every lease runs out on its only attempt
    assert capped.run(core.reap(p)) == (0, 3)
    assert int(capped.redis.zcard(p.failed)) == 2
    assert sum(_gone(capped, i) for i in ids) == 1
    assert capped.stats().totals["dead_dropped"] == 1
    assert capped.run(core.reap(p)) == (0, 0)  # run again: nothing left to reap, nothing more dropped
    assert capped.stats().totals["dead_dropped"] == 1 and int(capped.redis.zcard(p.failed)) == 2


def test_a_resent_failing_call_drops_nothing_more(capped: Scheduler, clock: ManualClock) -> None:
    core, p = capped.core, capped.core.keys.partitions[0]
    ids = capped.schedule(["a", "b", "c", "d"], "t", "m", delay=0).notification_ids
    clock.advance(1)
    claimed = capped.run(core.claim(p, 10, 60_000)).notifications
    failures: list[tuple[Notification, str]] = [(n, "boom") for n in claimed]
    op = core.fail(p, failures)
    (step,) = next(op)
    first = queue_step(capped.redis, capped.scripts, step)
    again = queue_step(capped.redis, capped.scripts, step)  # its reply was lost: redis-py sends it again
    assert [int(v) for v in first] == [int(v) for v in again] and int(first[3]) == 2
    assert int(capped.redis.zcard(p.failed)) == 2 and capped.stats().totals["dead_dropped"] == 2
    # A stale report of the same failures under a new call finds nothing to fail, so it drops nothing either.
    assert capped.run(core.fail(p, failures)) == (0, 0)
    assert capped.stats().totals["dead_dropped"] == 2 and sum(_gone(capped, i) for i in ids) == 2


def test_no_cap_keeps_every_dead_letter(redis_url: str, keyspace: Keyspace, clock: ManualClock) -> None:
    core = Core(keyspace, retry=RetryPolicy(delays_ms=()), retention=Retention(max_dead=0), clock=clock)
    with Scheduler(redis.Redis.from_url(redis_url), core=core) as zs:
        ids = zs.schedule([f"n{i}" for i in range(4)], "t", "m", delay=0).notification_ids
        _kill(zs, clock, ids)
        assert [zs.status(i).scheduled_status for i in ids] == ["failed"] * 4
        assert "dead_dropped" not in zs.stats().totals


def test_stats_the_http_api_metrics_and_the_cli_show_what_was_dropped(
    capped: Scheduler, clock: ManualClock, redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = capped.schedule(["a", "b", "c"], "t", "m", delay=0).notification_ids
    _kill(capped, clock, ids)
    assert main(["stats", "--json", "--redis-url", redis_url, "--prefix", prefix]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["dead_dropped"] == 1
    settings = Settings.of(redis_url=redis_url, prefix=prefix, max_dead=2)
    assert settings.core().retention.max_dead == 2
    tokens = Tokens(redis_url, prefix)
    try:
        with TestClient(create_app(settings, run_worker=False)) as client:
            stats = client.get("/api/stats", headers=tokens.headers("ops", admin=True)).json()
            metrics = client.get("/metrics").text
    finally:
        tokens.redis.close()
    assert stats["max_dead"] == 2 and stats["totals"]["dead_dropped"] == 1 and stats["counts"]["failed"] == 2
    assert stats["partitions"][0]["totals"]["dead_dropped"] == 1
    assert "zsched_dead_dropped_total 1" in metrics


def test_the_setting_is_read_from_the_environment() -> None:
    assert Settings.from_env({"ZSCHED_MAX_DEAD": "500"}).core().retention.max_dead == 500
    assert Settings.from_env({}).core().retention.max_dead == 100_000
