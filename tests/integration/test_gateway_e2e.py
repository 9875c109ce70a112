"""End to end: a ``zsched worker`` process delivers a scheduled notification to a real WebSocket client."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.wsutil import GatewayServer, open_socket, receive, until_ready, user_token
from zsched import Scheduler


@pytest.mark.slow
def test_scheduled_notification_reaches_the_socket_near_its_due_time(
    redis_url: str, prefix: str, zs: Scheduler
) -> None:
    token = user_token(redis_url, prefix, "hana")
    server = GatewayServer(redis_url, prefix).start()
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "zsched"), "worker", "--redis-url", redis_url, "--prefix", prefix],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with open_socket(server.url(token)) as ws:
            assert until_ready(ws) == []
            result = zs.schedule(["hana"], "Stand-up", "in 2 s", delay=2.0)
            message = receive(ws, timeout_s=30)
            arrived = time.time()
            assert message["id"] == result.notification_ids[0] and message["title"] == "Stand-up"
            lateness_s = arrived - result.scheduled_at.timestamp()
            assert -0.05 < lateness_s < 5.0, f"arrived {lateness_s:.3f} s after due"
    finally:
        worker.terminate()
        worker.wait(15)
        server.stop()
