"""The embedded server under crashes: a fixed port survives a SIGKILL and restart; a dead port is noticed fast."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from chaos.harness import free_port
from zsched.embedded import EmbeddedServer, _answers


def test_a_dead_port_is_probed_once_not_retried_for_seconds() -> None:
    # redis-py 6+ retries a refused connection with backoff by default; start() after a crash (a stale
    # port file) used to wait ~4 s on that before starting the new server
    started = time.monotonic()
    assert _answers(free_port()) is False
    assert time.monotonic() - started < 1.5


def test_killed_server_restarts_on_the_same_port_with_its_data(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path, persistent=True, port=free_port()).start()
    try:
        url = server.url
        r = redis.Redis.from_url(url)
        r.set("kept", "yes")
        server.kill()
        assert not _answers(server.requested_port)
        assert (tmp_path / "port").exists(), "a SIGKILLed server leaves its port file behind"
        server.start()
        assert server.url == url
        assert r.get("kept") == b"yes"
        r.close()
    finally:
        server.stop()
