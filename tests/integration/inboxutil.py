"""Test support for the inbox: append to a recipient's inbox straight through ``InboxDelivery``, read its ids."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import redis
import redis.asyncio as aioredis

from zsched import Keyspace
from zsched.delivery import InboxDelivery
from zsched.models import Notification


def deliver(redis_url: str, keyspace: Keyspace, count: int, **options: Any) -> list[str]:
    """Append ``count`` notifications for carol straight through ``InboxDelivery``; the stream ids her inbox
    holds afterwards."""

    async def go() -> None:
        connection = aioredis.Redis.from_url(redis_url)
        try:
            now = datetime.now(UTC)
            batch = [
                Notification(
                    id=i,
                    recipient="carol",
                    title="t",
                    message="m",
                    scheduled_at=now,
                    scheduled_status="processing",
                    created_at=now,
                )
                for i in range(count)
            ]
            assert await InboxDelivery(connection, keyspace, **options).deliver(batch) == [None] * count
        finally:
            await connection.aclose()

    asyncio.run(go())
    r = redis.Redis.from_url(redis_url)
    try:
        return stream_ids(r, keyspace)
    finally:
        r.close()


def stream_ids(r: redis.Redis, keyspace: Keyspace) -> list[str]:
    """The ids carol's inbox holds, oldest first."""
    reply = r.xrange(keyspace.for_recipient("carol").inbox("carol"))
    return [sid.decode() if isinstance(sid, bytes) else str(sid) for sid, _ in reply or ()]
