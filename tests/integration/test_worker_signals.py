"""A ``zsched worker`` process and its signals: the first finishes the batch in flight, a second exits at once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from zsched import Scheduler


def test_second_sigint_exits_while_a_delivery_is_stalled(redis_url: str, prefix: str, zs: Scheduler) -> None:
    hook = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # takes the webhook's request, never answers
    hook.bind(("127.0.0.1", 0))
    hook.listen(8)
    hook.settimeout(30)
    zs.schedule(["ines"], "Stuck", "the receiver never answers", delay=0)
    env = dict(
        os.environ,
        ZSCHED_CHANNELS="webhook",
        ZSCHED_WEBHOOK_URL=f"http://127.0.0.1:{hook.getsockname()[1]}/hook",
        ZSCHED_WEBHOOK_SECRET="test-secret",
        ZSCHED_WEBHOOK_TIMEOUT_S="120",
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "zsched.cli", "worker", "--redis-url", redis_url, "--prefix", prefix],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        connection, _ = hook.accept()  # the delivery is in flight, and stays so
        worker.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert worker.poll() is None, "the first SIGINT waits for the batch in flight"
        worker.send_signal(signal.SIGINT)
        assert worker.wait(15) == 128 + signal.SIGINT
        _, stderr = worker.communicate(timeout=5)
        assert "again: exiting now" in stderr
        connection.close()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(5)
        hook.close()
