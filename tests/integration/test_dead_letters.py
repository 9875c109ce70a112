"""Dead letters end to end: ``zsched dead list|retry``, and a worker killed while it holds a lease."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ManualClock
from tests.helpers import Recorder, tick
from tests.integration.hookserver import HookServer
from tests.integration.wsutil import wait_for
from zsched import Scheduler
from zsched.cli import main


def _kill_all(zs: Scheduler, clock: ManualClock, ids: list[int]) -> None:
    failing = Recorder(fail=set(ids))
    for _ in range(zs.core.retry.max_attempts):
        tick(zs, failing)
        clock.advance(1000)


def test_dead_list_and_retry_cli(
    pinned: Scheduler, clock: ManualClock, redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = pinned.schedule(["f1", "f2", "f3"], "Gone", "...", delay=0).notification_ids
    _kill_all(pinned, clock, ids)
    common = ["--redis-url", redis_url, "--prefix", prefix]
    assert main(["dead", "list", *common]) == 0
    out = capsys.readouterr().out
    assert "3 dead letter(s)" in out and "websocket gateway unreachable" in out
    assert main(["dead", "retry", str(ids[0]), *common]) == 0
    assert f"requeued 1 notification(s): {ids[0]}" in capsys.readouterr().out
    assert pinned.status(ids[0]).scheduled_status == "pending"
    assert main(["dead", "retry", str(ids[0]), *common]) == 1  # no longer a dead letter
    assert "not dead letters" in capsys.readouterr().out
    assert main(["dead", "retry", "--all", *common]) == 0
    assert "requeued 2 notification(s)" in capsys.readouterr().out
    assert main(["dead", "retry", *common]) == 2
    assert [pinned.status(i).scheduled_status for i in ids] == ["pending"] * 3
    clock.advance(1)
    recorder = Recorder()
    tick(pinned, recorder)
    assert sorted(n.id for n in recorder.delivered) == sorted(ids)


@pytest.mark.slow
def test_worker_killed_mid_delivery_loses_nothing(zs: Scheduler, redis_url: str, prefix: str) -> None:
    """A worker is SIGKILLed while its webhook call hangs; after the lease expires another delivers."""
    with HookServer([200], hang_s=30) as hook:
        env = dict(
            os.environ,
            ZSCHED_CHANNELS="webhook",
            ZSCHED_WEBHOOK_URL=hook.url,
            ZSCHED_WEBHOOK_SECRET="k",
            ZSCHED_WEBHOOK_TIMEOUT_S="60",
        )
        worker = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "zsched"),
                "worker",
                "--redis-url",
                redis_url,
                "--prefix",
                prefix,
                "--lease-ms",
                "1500",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # never read: a pipe would fill up and block a chatty worker
        )
        try:
            (nid,) = zs.schedule(["gus"], "Survive", "the crash", delay=0).notification_ids
            wait_for(lambda: hook.requests, "the first worker to claim and start delivering", 30)
            assert zs.status(nid).scheduled_status == "processing"
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
    killed_at = time.monotonic()
    recorder = Recorder()
    wait_for(lambda: tick(zs, recorder) and recorder.delivered, "a second worker to deliver after the lease", 30)
    assert time.monotonic() - killed_at < 30
    n = zs.status(nid)
    assert [d.id for d in recorder.delivered] == [nid]
    assert (n.scheduled_status, n.attempts) == ("sent", 2)
