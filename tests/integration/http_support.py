"""Fixtures for the HTTP tests: the app on the test server under the test's prefix, and tokens."""

from __future__ import annotations

import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis

with warnings.catch_warnings():  # starlette 1.x suggests httpx2 for its TestClient; httpx is what we have
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from zsched.settings import Settings
from zsched.web.app import create_app
from zsched.web.auth import SCOPE_SCHEDULE_ANY, TokenStore


def future(seconds: float = 3600) -> str:
    """An RFC 3339 time ``seconds`` from now, as a client would send it."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


class Tokens:
    """Creates tokens in the test's prefix and hands back ready-made Authorization headers."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self.redis = redis.Redis.from_url(redis_url)
        self.store = TokenStore(prefix)

    def headers(
        self, user: str, *, scopes: tuple[str, ...] = (), admin: bool = False, scheme: str = "Token"
    ) -> dict[str, str]:
        token, _ = self.store.create(self.redis, user, scopes=scopes, admin=admin)
        return {"Authorization": f"{scheme} {token}"}

    def service(self, user: str = "billing") -> dict[str, str]:
        return self.headers(user, scopes=(SCOPE_SCHEDULE_ANY,))


@pytest.fixture
def settings(redis_url: str, prefix: str) -> Settings:
    return Settings.of(redis_url=redis_url, prefix=prefix, rate_per_s=1000.0, rate_burst=1000)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, run_worker=False)) as c:
        yield c


@pytest.fixture
def tokens(redis_url: str, prefix: str) -> Iterator[Tokens]:
    t = Tokens(redis_url, prefix)
    yield t
    t.redis.close()


def schedule_body(recipients: list[object], **extra: object) -> dict[str, object]:
    """The seed's example body, due an hour from now unless ``extra`` says otherwise."""
    return {"recipients": recipients, "title": "Meeting", "message": "In 30 minutes", "scheduled_at": future(), **extra}


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now, for a ``zsched serve`` the test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_answers(process: subprocess.Popen[str] | subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Wait (at most 30 s) until ``url`` answers 200; fail with the process's log if it exits or never does."""
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer 200 within 30 s:\n" + log.read_text()
        time.sleep(0.1)
