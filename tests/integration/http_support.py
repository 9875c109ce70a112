"""Fixtures for the HTTP tests: the app on the test server under the test's prefix, and tokens."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

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
