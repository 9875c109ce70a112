"""A blip on the gateway's pub/sub connection to a single server closes no socket: once redis-py has subscribed
again, each socket catches up from its inbox what was published meanwhile, with no duplicate."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from tests.helpers import tick
from tests.integration.wsutil import GatewayServer, open_socket, receive, until_ready, user_token, wait_for
from zsched import Scheduler
from zsched.models import Delivered, json_encoder


@pytest.fixture
def gw(redis_url: str, prefix: str) -> Iterator[GatewayServer]:
    server = GatewayServer(redis_url, prefix, heartbeat_s=60).start()
    yield server
    server.stop()


def _kill_pubsub(gw: GatewayServer, redis_url: str) -> None:
    """Cut the gateway's pub/sub connection, and only it (the server may be shared): CLIENT KILL by its address."""
    connection = gw.gateway._subscriptions._single.pubsub.connection  # type: ignore[union-attr]
    host, port = connection._writer.get_extra_info("sockname")[:2]
    r = redis.Redis.from_url(redis_url)
    assert r.execute_command("CLIENT", "KILL", "ADDR", f"{host}:{port}") in (1, b"OK")
    r.close()


def _published_nowhere(zs: Scheduler, user: str) -> int:
    """A notification appended to the user's inbox but published on a channel nobody hears, as if the gateway's
    connection had been down when it was published."""
    (nid,) = zs.schedule([user], "while down", "...", delay=3600).notification_ids
    body = json_encoder.encode(Delivered.of(zs.status(nid), datetime.now(UTC))).decode()
    p = zs.core.keys.for_recipient(user)
    zs.scripts["publish_inbox"](
        keys=[p.op(uuid.uuid4().hex), p.inbox(user)], args=[1000, 86_400_000, "", 60_000, "PUBLISH", "nowhere", body]
    )
    return nid


def test_a_blip_closes_no_socket_and_what_was_missed_arrives_once(
    gw: GatewayServer, redis_url: str, prefix: str, zs: Scheduler
) -> None:
    token = user_token(redis_url, prefix, "dana")
    with open_socket(gw.url(token)) as ws:
        assert until_ready(ws) == []
        (before,) = zs.schedule(["dana"], "before", "...", delay=0).notification_ids
        tick(zs)
        assert receive(ws)["id"] == before
        missed = _published_nowhere(zs, "dana")
        _kill_pubsub(gw, redis_url)
        got = receive(ws, timeout_s=15)  # the socket stays open: caught up from the inbox
        assert (got["type"], got["id"]) == ("notification", missed)
        (after,) = zs.schedule(["dana"], "after", "...", delay=0).notification_ids
        wait_for(lambda: gw.gateway.subscriptions == 1, "the channel to be subscribed again")
        tick(zs)
        assert receive(ws)["id"] == after  # live again, and nothing twice: `before` and `missed` are not resent
