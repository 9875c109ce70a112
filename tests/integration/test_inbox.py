"""An inbox stream is bounded: trimmed by age (the sent records' retention) and by count, and it expires once
the retention passes with nothing appended, so no recipient ever seen leaves memory behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.conftest import ManualClock
from tests.integration.inboxutil import deliver, stream_ids
from zsched import Keyspace, Settings
from zsched.delivery import InboxDelivery
from zsched.delivery.wiring import build_router

KEEP_MS = 60_000


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_an_inbox_is_trimmed_by_age_and_expires_after_the_retention(
    redis_url: str, keyspace: Keyspace, r: redis.Redis
) -> None:
    stream = keyspace.for_recipient("carol").inbox("carol")
    deliver(redis_url, keyspace, 4, keep_ms=KEEP_MS)
    assert r.xlen(stream) == 4
    assert 0 < r.pttl(stream) <= KEEP_MS
    later = ManualClock()
    later.advance(KEEP_MS + 1)
    (kept,) = deliver(redis_url, keyspace, 1, keep_ms=KEEP_MS, clock=later)
    assert stream_ids(r, keyspace) == [kept]
    assert 0 < r.pttl(stream) <= KEEP_MS


def test_an_inbox_is_capped_by_count(redis_url: str, keyspace: Keyspace, r: redis.Redis) -> None:
    deliver(redis_url, keyspace, 250, inbox_maxlen=20)
    assert r.xlen(keyspace.for_recipient("carol").inbox("carol")) < 250 - 100  # whole nodes go


def test_the_retention_comes_from_the_sent_records_setting(redis_url: str, keyspace: Keyspace) -> None:
    settings = Settings.of(keep_sent_ms=KEEP_MS, inbox_maxlen=42)
    inbox = build_router(settings, redis.Redis.from_url(redis_url), keyspace).channels["websocket"]
    assert isinstance(inbox, InboxDelivery)
    assert (inbox.keep_ms, inbox.inbox_maxlen) == (KEEP_MS, 42)
