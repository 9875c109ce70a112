"""zsched.testing: the test server runs the real scripts on a real server, on a clock the test moves; the
pytest plugin gives a user's test one per test."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from zsched.errors import PastScheduleError
from zsched.testing import ZschedTestServer

EIGHT = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)
NINE = EIGHT + timedelta(hours=1)


def test_on_its_own_embedded_server_bob_is_scheduled_for_nine_and_delivered_at_nine() -> None:
    with ZschedTestServer(now=EIGHT) as zt:
        r = zt.scheduler.schedule(["bob", "alice"], "Standup", "in room B2", at=NINE)
        assert {(n.recipient, n.scheduled_at) for n in zt.pending()} == {("bob", NINE), ("alice", NINE)}
        [bobs] = zt.pending("bob")
        assert zt.run_due() == []
        assert zt.run_due(until=NINE - timedelta(milliseconds=1)) == []
        sent = zt.run_due(until=NINE)
        assert sorted(n.id for n in sent) == sorted(r.notification_ids) and zt.outbox == sent
        assert zt.scheduler.status(bobs.id).scheduled_status == "sent"
        assert zt.pending() == [] and zt.run_due(advance=timedelta(days=1)) == []
        data_dir = zt._data_dir
        assert data_dir is not None
    assert not Path(data_dir).exists()  # the server was stopped and its folder removed


def test_on_a_given_server_many_partitions_and_rounds_and_only_its_own_keys(redis_url: str) -> None:
    with ZschedTestServer(redis_url, partitions=3) as zt:
        prefix = zt.prefix
        ids = zt.scheduler.schedule([f"u{i}" for i in range(250)], "Hi", "many", delay=60).notification_ids
        cancelled = zt.scheduler.cancel(ids[0]).id
        assert zt.run_due(advance=59.999) == []
        sent = zt.run_due(advance=0.001)  # more than one worker batch (100) per partition round
        assert sorted(n.id for n in sent) == sorted(set(ids) - {cancelled})
    r = redis.Redis.from_url(redis_url)
    assert list(r.scan_iter(match=f"{prefix}:*")) == []  # a generated prefix is deleted on close
    r.close()


def test_a_given_prefix_is_kept(redis_url: str, prefix: str) -> None:
    with ZschedTestServer(redis_url, prefix=prefix) as zt:
        zt.scheduler.schedule(["bob"], "Kept", "after close", delay=60)
    r = redis.Redis.from_url(redis_url)
    assert list(r.scan_iter(match=f"{prefix}:*"))  # the prefix fixture deletes it, not the test server
    r.close()


async def test_arun_due_inside_an_event_loop(redis_url: str) -> None:
    with ZschedTestServer(redis_url, now=EIGHT) as zt:
        async with zt.async_scheduler() as zs:
            await zs.schedule(["bob"], "Async", "scheduled from a coroutine", at=NINE)
        [sent] = await zt.arun_due(advance=timedelta(hours=1))
        assert sent.title == "Async"


def test_the_clock_moves_forward_only_and_wants_aware_times() -> None:
    zt = ZschedTestServer(now=NINE)
    with pytest.raises(ValueError, match="only moves forward"):
        zt.advance(-1)
    with pytest.raises(ValueError, match="only moves forward"):
        zt.clock.set(EIGHT)
    with pytest.raises(ValueError, match="aware datetime"):
        ZschedTestServer(now=datetime(2030, 1, 1))
    with pytest.raises(RuntimeError, match="not started"):
        _ = zt.scheduler
    zt.advance(timedelta(minutes=1))
    assert zt.now == NINE + timedelta(minutes=1)


def test_past_schedules_are_judged_on_the_test_clock(redis_url: str) -> None:
    with ZschedTestServer(redis_url, now=NINE) as zt, pytest.raises(PastScheduleError):
        zt.scheduler.schedule(["bob"], "Late", "before the test's now", at=EIGHT)


def test_the_pytest_plugin_gives_a_users_test_its_own_server(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["zsched.contrib.pytest"]\n')
    # the user's own pytest config: pytest-asyncio (installed here) warns when this is unset, an error under -W error
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            from datetime import timedelta

            def test_one(zsched_server):
                zsched_server.scheduler.schedule(["bob"], "Hi", "from a user's test", delay=3600)
                assert [n.recipient for n in zsched_server.pending()] == ["bob"]
                assert [n.title for n in zsched_server.run_due(advance=timedelta(hours=1))] == ["Hi"]

            def test_two_starts_empty(zsched_server):
                assert zsched_server.pending() == [] and zsched_server.outbox == []
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ZSCHED_TEST_URL", "DJANGO_SETTINGS_MODULE")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
