"""The backlog a socket gets on connect: an offline recipient gets everything it has not acked, read in pages;
a gap (inbox entries trimmed by the cap or by age after the client's position) is said before what follows
it, with the oldest id still there, and never skipped silently."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from tests.conftest import ManualClock
from tests.helpers import tick
from tests.integration.inboxutil import deliver
from tests.integration.wsutil import GatewayServer, open_socket, receive, until_ready, user_token
from zsched import Keyspace, Scheduler

KEEP_MS = 60_000


@pytest.fixture
def token(redis_url: str, prefix: str) -> str:
    return user_token(redis_url, prefix, "carol")


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _serve(redis_url: str, prefix: str, **options: Any) -> GatewayServer:
    server = GatewayServer(redis_url, prefix, heartbeat_s=60, **options)
    server.start()
    return server


def _send_many(zs: Scheduler, count: int) -> list[int]:
    ids = [zs.schedule(["carol"], f"n{i}", "...", delay=0).notification_ids[0] for i in range(count)]
    tick(zs, batch=count)
    return ids


def until_ready_message(ws: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The messages before ``ready``, and ``ready`` itself."""
    items: list[dict[str, Any]] = []
    while (message := receive(ws))["type"] != "ready":
        items.append(message)
    return items, message


# -- offline recipients get everything they have not acked, in pages ----------------------------------


def test_150_sent_while_offline_all_arrive_on_the_next_connect(
    redis_url: str, prefix: str, token: str, zs: Scheduler
) -> None:
    sent = _send_many(zs, 150)
    gw = _serve(redis_url, prefix)
    try:
        with open_socket(gw.url(token)) as ws:
            got = [m["id"] for m in until_ready(ws)]
    finally:
        gw.stop()
    assert sorted(got) == sent  # each once (the worker's claim order decides the stream's)


def test_the_backlog_is_read_in_pages(
    redis_url: str, prefix: str, token: str, zs: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts: list[int | None] = []
    xrange = aioredis.Redis.xrange

    def spy(self: aioredis.Redis, name: Any, *args: Any, **kwargs: Any) -> Any:
        if ":inbox:" in str(name):
            counts.append(kwargs.get("count"))
        return xrange(self, name, *args, **kwargs)

    monkeypatch.setattr(aioredis.Redis, "xrange", spy)
    sent = _send_many(zs, 150)
    gw = _serve(redis_url, prefix, backlog_page=7)
    try:
        with open_socket(gw.url(token)) as ws:
            backlog = until_ready(ws)
            assert sorted(m["id"] for m in backlog) == sent
            live = _send_many(zs, 1)
            assert receive(ws)["id"] == live[0]  # the seam: the live one once, after the backlog
    finally:
        gw.stop()
    assert counts and set(counts) == {7}, counts
    assert len(counts) >= 150 // 7


def test_acked_ones_are_not_replayed_across_pages(redis_url: str, prefix: str, token: str, zs: Scheduler) -> None:
    sent = _send_many(zs, 30)
    acked = sent[::3]
    gw = _serve(redis_url, prefix, backlog_page=4)
    try:
        with open_socket(gw.url(token)) as ws:
            assert sorted(m["id"] for m in until_ready(ws)) == sent
            ws.send(f'{{"type":"ack","ids":{acked}}}')
            assert {receive(ws)["id"] for _ in acked} == set(acked)
        with open_socket(gw.url(token)) as ws:
            assert sorted(m["id"] for m in until_ready(ws)) == [i for i in sent if i not in acked]
    finally:
        gw.stop()


# -- a gap is said, first -------------------------------------------------------------------------------


def test_since_older_than_the_oldest_kept_entry_is_told_truncated(
    redis_url: str, prefix: str, keyspace: Keyspace, token: str
) -> None:
    """The cap trimmed what came after the client's position: the first message says so and names the
    oldest id left; the backlog then starts there."""
    old = deliver(redis_url, keyspace, 150, inbox_maxlen=10)  # approximate: one 100-entry node goes
    assert 10 <= len(old) < 150
    kept = old[0]
    gw = _serve(redis_url, prefix, backlog_page=16)
    try:
        with open_socket(gw.url(token, since="1-0")) as ws:
            first = receive(ws)
            assert first == {"type": "truncated", "oldest_stream_id": kept, "after": "1-0"}
            backlog = until_ready_message(ws)
    finally:
        gw.stop()
    replayed, ready = backlog
    assert [m["stream_id"] for m in replayed] == old
    assert ready["truncated"] is True and ready["oldest_stream_id"] == kept


def test_trimmed_by_age_is_truncated_but_the_last_trimmed_position_is_not(
    redis_url: str, prefix: str, keyspace: Keyspace, token: str
) -> None:
    first = deliver(redis_url, keyspace, 5, keep_ms=KEEP_MS)
    later = ManualClock()
    later.advance(KEEP_MS + 1000)  # past the retention of all five
    (kept,) = deliver(redis_url, keyspace, 1, keep_ms=KEEP_MS, clock=later)
    assert kept not in first
    gw = _serve(redis_url, prefix)
    try:
        with open_socket(gw.url(token, since=first[1])) as ws:  # 3 of 5 after it were trimmed
            assert receive(ws) == {"type": "truncated", "oldest_stream_id": kept, "after": first[1]}
            replayed, ready = until_ready_message(ws)
            assert [m["stream_id"] for m in replayed] == [kept]
            assert ready["truncated"] is True
        with open_socket(gw.url(token, since=first[-1])) as ws:  # it had all five: no gap
            replayed, ready = until_ready_message(ws)
            assert [m["stream_id"] for m in replayed] == [kept]
            assert "truncated" not in ready
    finally:
        gw.stop()


def test_an_expired_or_recreated_inbox_cannot_vouch_for_a_since(
    redis_url: str, prefix: str, keyspace: Keyspace, token: str, r: redis.Redis
) -> None:
    old = deliver(redis_url, keyspace, 3)
    r.delete(keyspace.for_recipient("carol").inbox("carol"))  # as its PEXPIRE would
    gw = _serve(redis_url, prefix)
    try:
        with open_socket(gw.url(token, since=old[-1])) as ws:
            assert receive(ws) == {"type": "truncated", "oldest_stream_id": None, "after": old[-1]}
            assert until_ready_message(ws)[0] == []
        (new,) = deliver(redis_url, keyspace, 1)
        with open_socket(gw.url(token, since=old[-1])) as ws:
            assert receive(ws)["oldest_stream_id"] == new
        with open_socket(gw.url(token, since="0")) as ws:  # the whole inbox, which is whole
            replayed, ready = until_ready_message(ws)
            assert [m["stream_id"] for m in replayed] == [new] and "truncated" not in ready
    finally:
        gw.stop()
