"""Small test helpers: run worker ticks against a real server, record what was delivered."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis.asyncio as aioredis

from zsched import AsyncScheduler, Scheduler
from zsched.delivery import Delivery, Outcome
from zsched.delivery.worker import Worker
from zsched.models import Notification


class Recorder:
    """A delivery that records every notification and fails the ones whose ids are in ``fail``."""

    def __init__(self, fail: set[int] | None = None) -> None:
        self.fail = fail if fail is not None else set()
        self.delivered: list[Notification] = []

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for n in batch:
            if n.id in self.fail:
                outcomes.append(ConnectionRefusedError(f"websocket gateway unreachable for {n.recipient}"))
            else:
                self.delivered.append(n)
                outcomes.append(None)
        return outcomes


def tick(zs: Scheduler, delivery: Delivery | None = None, **options: object) -> Worker:
    """Run one worker round with ``zs``'s core (and so its clock) over a fresh asyncio connection."""

    async def go() -> Worker:
        url = zs.redis.connection_pool.connection_kwargs
        connection = aioredis.Redis(
            host=url.get("host", "127.0.0.1"),
            port=url.get("port", 6379),
            db=url.get("db", 0),
            password=url.get("password"),
        )
        scheduler = AsyncScheduler(connection, core=zs.core)
        worker = Worker(scheduler, delivery, **options)  # type: ignore[arg-type]
        try:
            await worker.tick()
        finally:
            await scheduler.close()
        return worker

    return asyncio.run(go())
