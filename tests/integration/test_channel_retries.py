"""A retry sends only the channels that failed, and the views show each channel's outcome.

Before, a notification sent through websocket and webhook was retried through both: with the webhook
failing twice, the recipient's inbox got the WebSocket message three times.
"""

from __future__ import annotations

import msgspec
import redis.asyncio as aioredis

from tests.conftest import ManualClock
from tests.integration.hookserver import HookServer
from zsched import AsyncScheduler, Core, Keyspace, RetryPolicy
from zsched.delivery import InboxDelivery, Router, WebhookChannel
from zsched.delivery.worker import Worker
from zsched.web.views import full_view


async def test_a_retry_sends_only_the_channels_that_failed(
    redis_url: str, keyspace: Keyspace, policy: RetryPolicy, clock: ManualClock
) -> None:
    connection = aioredis.Redis.from_url(redis_url)
    zs = AsyncScheduler(connection, core=Core(keyspace, retry=policy, clock=clock))
    try:
        with HookServer([500, 500, 200]) as hook:
            inbox = InboxDelivery(connection, keyspace, clock=clock)
            worker = Worker(zs, Router({"websocket": inbox, "webhook": WebhookChannel(hook.url, "s3cret")}))
            scheduled = await zs.schedule(["erin"], "Both", "ways", delay=0, channels=["websocket", "webhook"])
            (nid,) = scheduled.notification_ids
            origin = hook.url.removesuffix("/hook")

            await worker.tick()
            n = await zs.status(nid)
            assert (n.scheduled_status, n.attempts, n.done) == ("pending", 1, ["websocket"])
            assert full_view(n, "creator").deliveries == {
                "websocket": "sent",
                "webhook": f"failed: webhook {origin} answered 500; expected 2xx",
            }
            assert full_view(n, "recipient").deliveries == {"websocket": "sent", "webhook": "failed"}
            assert "done" not in msgspec.to_builtins(full_view(n, "admin"))
            assert "channel_errors" not in msgspec.to_builtins(full_view(n, "recipient"))

            for _ in range(2):
                clock.advance(1000)  # the policy fixture's retries are 50 and 100 ms later
                await worker.tick()
            n = await zs.status(nid)
            assert (n.scheduled_status, n.attempts) == ("sent", 3)
            assert full_view(n, "recipient").deliveries == {"websocket": "sent", "webhook": "sent"}
        assert len(hook.requests) == 3
        assert await connection.xlen(keyspace.for_recipient("erin").inbox("erin")) == 1
    finally:
        await zs.close()


async def test_a_single_channel_records_nothing_per_channel(
    redis_url: str, keyspace: Keyspace, policy: RetryPolicy, clock: ManualClock
) -> None:
    connection = aioredis.Redis.from_url(redis_url)
    zs = AsyncScheduler(connection, core=Core(keyspace, retry=policy, clock=clock))
    try:
        with HookServer([500]) as hook:
            worker = Worker(zs, Router({"webhook": WebhookChannel(hook.url, "s3cret")}, default=("webhook",)))
            (nid,) = (await zs.schedule(["erin"], "One", "way", delay=0)).notification_ids
            await worker.tick()
        p = keyspace.for_id(nid)
        state = await connection.hget(p.state, str(nid))
        assert state is not None and b"done" not in state and b"channel_errors" not in state
        n = await zs.status(nid)
        assert n.scheduled_status == "pending" and full_view(n, "creator").deliveries == {}
    finally:
        await zs.close()
