"""Each channel's timeout is a total per delivery, against real local servers: a webhook that trickles its
answer fails at the deadline, a queued POST's clock starts when it gets a slot, and a callable's timeout
covers sync functions too, which run off the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.integration.hookserver import HookServer
from zsched.delivery.callables import CallableDelivery
from zsched.delivery.webhook import WebhookChannel
from zsched.errors import WebhookError
from zsched.models import Notification, ms_to_datetime


def _batch(size: int) -> list[Notification]:
    return [
        Notification(
            id=i,
            recipient=f"user{i}",
            title="t",
            message="m",
            scheduled_at=ms_to_datetime(0),
            scheduled_status="processing",
            created_at=ms_to_datetime(0),
            attempts=1,
        )
        for i in range(1, size + 1)
    ]


@pytest.fixture
async def trickler() -> AsyncIterator[str]:
    """A receiver that answers 200 at once, then sends its 20-byte body one byte every 0.1 s."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n")
            for _ in range(20):
                await writer.drain()
                await asyncio.sleep(0.1)
                writer.write(b"x")
            await writer.drain()
        finally:
            writer.close()  # also when the test is over first and its loop cancels this answer mid-trickle

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/hook"
    server.close()


async def test_a_webhook_trickling_its_answer_fails_at_the_total_timeout(trickler: str) -> None:
    channel = WebhookChannel(trickler, "secret", timeout_s=0.5)  # each byte comes well within 0.5 s
    started = time.monotonic()
    (outcome,) = await channel.deliver(_batch(1))
    took_s = time.monotonic() - started
    await channel.aclose()
    assert isinstance(outcome, WebhookError) and "did not answer within 0.5 s" in str(outcome)
    assert took_s < 1.5, f"{took_s:.1f} s: the 2 s answer was waited out"


async def test_a_queued_webhook_post_is_timed_from_when_it_gets_a_slot() -> None:
    with HookServer(hang_s=0.5) as hook:
        channel = WebhookChannel(hook.url, "secret", timeout_s=0.9, concurrency=1)
        outcomes = await channel.deliver(_batch(2))  # the second waits 0.5 s for the slot, then takes 0.5 s
        await channel.aclose()
    assert outcomes == [None, None]


async def test_a_sync_callable_runs_off_the_event_loop() -> None:
    delivery = CallableDelivery(lambda n: time.sleep(0.6))
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    outcomes = await delivery.deliver(_batch(3))
    took_s = time.monotonic() - started
    ticking.cancel()
    await delivery.aclose()
    assert outcomes == [None, None, None]
    assert gaps and max(gaps) < 0.4, f"the loop stalled: ticks {len(gaps)}, longest gap {max(gaps, default=0):.2f} s"
    assert took_s < 1.5, f"{took_s:.1f} s: the three calls ran one after another"


@pytest.mark.parametrize("slow", ["sync", "async"])
async def test_a_callables_timeout_is_a_total_for_sync_and_async(slow: str) -> None:
    async def sleeps(n: Notification) -> None:
        await asyncio.sleep(2)

    delivery = CallableDelivery((lambda n: time.sleep(2)) if slow == "sync" else sleeps, timeout_s=0.3)
    started = time.monotonic()
    (outcome,) = await delivery.deliver(_batch(1))
    took_s = time.monotonic() - started
    await delivery.aclose()
    assert isinstance(outcome, TimeoutError) and took_s < 1.5
