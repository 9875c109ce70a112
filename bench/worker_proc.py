"""A zsched worker process for the benchmarks: the real ``zsched.Worker`` and ``InboxDelivery``
(inbox XADD + PUBLISH), wrapped to record when each notification left. SIGTERM stops it; it then writes
``[[id, lateness_ms], ...]`` as JSON to ``--out``.

    ZSCHED_REDIS_URL=redis://127.0.0.1:6379/0 python -m bench.worker_proc --prefix zb-x --out /tmp/rec.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence

import redis.asyncio as aioredis

from zsched import AsyncScheduler
from zsched.delivery import InboxDelivery, Outcome
from zsched.delivery.worker import Worker
from zsched.engine import Core
from zsched.engine.keys import Keyspace
from zsched.models import Notification


class RecordingDelivery:
    """Delivers through ``InboxDelivery`` and notes, per notification, how late it left (wall clock)."""

    def __init__(self, inner: InboxDelivery) -> None:
        self.inner = inner
        self.records: list[tuple[int, float]] = []

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]:
        """Deliver, then record ``now - scheduled_at`` in ms for each one delivered."""
        outcomes = await self.inner.deliver(batch)
        now_ms = time.time() * 1000
        for n, outcome in zip(batch, outcomes, strict=True):
            if outcome is None:
                self.records.append((n.id, now_ms - n.scheduled_at.timestamp() * 1000))
        return outcomes


async def run(url: str, prefix: str, out: str, batch: int, purge_every_s: float = 3600.0) -> None:
    """Run the worker until SIGTERM; write the records to ``out``."""
    connection = aioredis.Redis.from_url(url)
    scheduler = AsyncScheduler(connection, core=Core(Keyspace(prefix)))
    delivery = RecordingDelivery(InboxDelivery(connection, scheduler.core.keys))
    worker = Worker(scheduler, delivery, batch=batch, purge_every_s=purge_every_s)
    worker.install_signal_handlers()
    await worker._subscribe()
    print("ready", flush=True)
    try:
        await worker.run()
    finally:
        await scheduler.close()
        with open(out, "w") as f:
            json.dump(delivery.records, f)


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse flags, run until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--url", default=os.environ.get("ZSCHED_REDIS_URL"), help="default: ZSCHED_REDIS_URL (off argv)"
    )
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--purge-every-s", type=float, default=3600.0, help="default 3600: no purge in most runs")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("give --url or ZSCHED_REDIS_URL")
    asyncio.run(run(args.url, args.prefix, args.out, args.batch, args.purge_every_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
