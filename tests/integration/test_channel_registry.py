"""A new channel is one module and one registration: this file is that module.

Registered here and nowhere else, the ``pager`` channel is accepted by the HTTP API, listed in the OpenAPI
document, and delivers what names it, through the worker that ``zsched serve`` runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import pytest

from tests.integration.http_support import TestClient, Tokens, future, schedule_body, tokens
from zsched import Notification, Router
from zsched.delivery import ChannelContext, Outcome, register_channel, unregister_channel
from zsched.settings import Settings
from zsched.web.app import create_app

__all__ = ["tokens"]  # a fixture used by name

SCHEDULE = "/api/notifications/schedule/"


class Pager:
    """The whole channel: it records what it was handed."""

    def __init__(self, context: ChannelContext) -> None:
        self.prefix = context.settings.redis.prefix
        self.paged: list[Notification] = []

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]:
        self.paged += batch
        return [None] * len(batch)


@pytest.fixture
def pagers() -> Iterator[list[Pager]]:
    built: list[Pager] = []

    def build(context: ChannelContext) -> Pager:
        built.append(Pager(context))
        return built[-1]

    register_channel("pager", build)  # the one registration
    yield built
    unregister_channel("pager")


def _enum(client: TestClient) -> list[str]:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["ScheduleBody"]
    return list(schema["properties"]["channels"]["anyOf"][0]["items"]["enum"])


def test_a_registered_channel_is_accepted_documented_and_delivers(
    pagers: list[Pager], redis_url: str, prefix: str, tokens: Tokens
) -> None:
    settings = Settings.of(redis_url=redis_url, prefix=prefix, rate_per_s=1000.0, rate_burst=1000)
    with TestClient(create_app(settings, run_worker=True)) as c:
        assert _enum(c) == ["websocket", "pager"]
        me = tokens.headers("alice")
        r = c.post(SCHEDULE, headers=me, json=schedule_body(["alice"], channels=["pager"], scheduled_at=future(0.2)))
        assert r.status_code == 201, r.text
        (nid,) = r.json()["notification_ids"]
        deadline = time.monotonic() + 15
        while c.get(f"/api/notifications/{nid}/", headers=me).json()["scheduled_status"] != "sent":
            assert time.monotonic() < deadline, "not delivered within 15 s"
            time.sleep(0.05)
    (pager,) = pagers
    assert pager.prefix == prefix and [n.id for n in pager.paged] == [nid]


def test_without_the_registration_the_channel_is_refused(redis_url: str, prefix: str, tokens: Tokens) -> None:
    settings = Settings.of(redis_url=redis_url, prefix=prefix, rate_per_s=1000.0, rate_burst=1000)
    with TestClient(create_app(settings, run_worker=False)) as c:
        assert _enum(c) == ["websocket"]
        r = c.post(SCHEDULE, headers=tokens.headers("alice"), json=schedule_body(["alice"], channels=["pager"]))
    assert r.status_code == 422 and r.json()["field"] == "channels"


def test_a_router_given_to_the_app_decides_the_channels(redis_url: str, prefix: str, tokens: Tokens) -> None:
    paged: list[int] = []
    router = Router(default=["audit"])
    router.register("audit", lambda n: paged.append(n.id))
    settings = Settings.of(redis_url=redis_url, prefix=prefix, rate_per_s=1000.0, rate_burst=1000)
    with TestClient(create_app(settings, delivery=router, run_worker=False)) as c:
        assert _enum(c) == ["audit"]
        ok = c.post(SCHEDULE, headers=tokens.headers("alice"), json=schedule_body(["alice"], channels=["audit"]))
        refused = c.post(
            SCHEDULE, headers=tokens.headers("alice"), json=schedule_body(["alice"], channels=["websocket"])
        )
    assert ok.status_code == 201 and refused.status_code == 422
