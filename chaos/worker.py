"""A chaos worker: the real ``zsched.Worker`` whose delivery appends ids to a file.

The file lives outside Redis, so the supervisor can count what really left even when Redis itself
crashes. One write per batch, before the worker acks it: a SIGKILL between the write and the ack is
exactly the duplicate that at-least-once allows.

    python -m chaos.worker --redis-url redis://127.0.0.1:6379/0 --prefix p --lease-ms 2000 --log d.log
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Sequence

import redis.asyncio as aioredis

from zsched import AsyncScheduler, Core, Keyspace, RetryPolicy
from zsched.delivery import Outcome
from zsched.delivery.worker import Worker
from zsched.models import Notification

RETRY = RetryPolicy(delays_ms=(100, 200, 400))
"""Short retries, so a delivery that failed on a cut connection is retried within the run."""


class FileDelivery:
    """Appends one line per notification (``id recipient``) to a file with O_APPEND; never fails.

    ``latency_ms`` stands for the network: half of it passes before the write (sending), half after
    (waiting for the far end to confirm), so a kill can land on either side of the delivery.
    """

    def __init__(self, path: str, latency_ms: int = 0) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.half_s = latency_ms / 2000

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]:
        """Record the batch in one write, then report every notification delivered."""
        if self.half_s:
            await asyncio.sleep(self.half_s)
        os.write(self.fd, "".join(f"{n.id} {n.recipient}\n" for n in batch).encode())
        if self.half_s:
            await asyncio.sleep(self.half_s)
        return [None] * len(batch)


async def serve(url: str, prefix: str, lease_ms: int, batch: int, log_path: str, latency_ms: int) -> None:
    """Run one worker until SIGTERM/SIGINT."""
    scheduler = AsyncScheduler(aioredis.Redis.from_url(url), core=Core(Keyspace(prefix), retry=RETRY))
    worker = Worker(
        scheduler, FileDelivery(log_path, latency_ms), batch=batch, lease_ms=lease_ms, idle_s=1.0, reap_every_s=0.5
    )
    worker.install_signal_handlers()
    try:
        await worker.run()
    finally:
        await scheduler.close()


def main() -> None:
    """Parse the flags and run the worker."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--lease-ms", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--log", required=True, help="file the delivered ids are appended to")
    parser.add_argument("--latency-ms", type=int, default=0, help="simulated delivery time per batch")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args.redis_url, args.prefix, args.lease_ms, args.batch, args.log, args.latency_ms))


if __name__ == "__main__":
    main()
