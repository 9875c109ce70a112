"""A chaos worker: the real ``zsched.Worker`` whose delivery appends to a journal file.

The journal lives outside Redis, so the supervisor can count what really left even when Redis itself
crashes, and say why each duplicate happened (``chaos.ledger`` reads it). Lines, one write each::

    C <monotonic s> <id,id,...>   a claimed batch reached delivery
    D <id> <recipient>            delivered (the whole batch in one write, before the ack)
    A <monotonic s> <id,id,...>   the ack for that batch returned
    X <monotonic s> <id,id,...>   the worker went on (or stopped) without acking it: its ack failed

``time.monotonic`` is CLOCK_MONOTONIC, one clock for every process on the machine, so the supervisor
can compare these times with its own (e.g. the moment it killed Redis).

    python -m chaos.worker --redis-url redis://127.0.0.1:6379/0 --prefix p --lease-ms 2000 --log j.log
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from collections.abc import Sequence

import redis.asyncio as aioredis

from zsched import AsyncScheduler, Core, Keyspace, RetryPolicy
from zsched.delivery import Outcome
from zsched.delivery.worker import Worker
from zsched.models import Notification

RETRY = RetryPolicy(delays_ms=(100, 200, 400) + (400,) * 9)
"""Short retries, so a delivery that failed on a cut connection is retried within the run; and many of them,
because every expired lease costs an attempt and the worker-crash supervisor kills the workers that hold a
batch: with four attempts, the run's last batch could be claimed and killed four times in a row and end
``failed`` (the designed end of a lease that keeps expiring, but not what that row is about)."""


class FileDelivery:
    """Journals each claimed batch, its delivery and its ack (see the module docstring); never fails.

    ``latency_ms`` stands for the network: half of it passes before the write (sending), half after
    (waiting for the far end to confirm), so a kill can land on either side of the delivery.
    """

    def __init__(self, path: str, latency_ms: int = 0) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.half_s = latency_ms / 2000
        self.held: list[int] = []  # the batch delivered and not yet acked
        self.unacked: set[int] = set()

    def _write(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def _event(self, tag: str, ids: Sequence[int]) -> None:
        self._write(f"{tag} {time.monotonic():.4f} {','.join(map(str, ids))}\n")

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]:
        """Journal the claim, wait, record the batch in one write, wait; report every notification delivered."""
        self.drop()
        self.held = [n.id for n in batch]
        self.unacked = set(self.held)
        self._event("C", self.held)
        if self.half_s:
            await asyncio.sleep(self.half_s)
        self._write("".join(f"D {n.id} {n.recipient}\n" for n in batch))
        if self.half_s:
            await asyncio.sleep(self.half_s)
        return [None] * len(batch)

    def observe(self, kind: str, n: Notification, late_ms: float) -> None:
        """The worker's observer: called with "sent" once the ack returned; the batch's last one journals it."""
        self.unacked.discard(n.id)
        if self.held and not self.unacked:
            self._event("A", self.held)
            self.held = []

    def drop(self) -> None:
        """Journal a batch the worker moved on from without its ack (the ack raised: Redis went away)."""
        if self.held:
            self._event("X", self.held)
            self.held = []


async def serve(url: str, prefix: str, lease_ms: int, batch: int, log_path: str, latency_ms: int) -> None:
    """Run one worker until SIGTERM/SIGINT."""
    scheduler = AsyncScheduler(aioredis.Redis.from_url(url), core=Core(Keyspace(prefix), retry=RETRY))
    journal = FileDelivery(log_path, latency_ms)
    worker = Worker(
        scheduler, journal, batch=batch, lease_ms=lease_ms, idle_s=1.0, reap_every_s=0.5, observer=journal.observe
    )
    worker.install_signal_handlers()
    try:
        await worker.run()
    finally:
        journal.drop()
        await scheduler.close()


def main() -> None:
    """Parse the flags and run the worker."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--lease-ms", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--log", required=True, help="the journal file (claims, deliveries, acks)")
    parser.add_argument("--latency-ms", type=int, default=0, help="simulated delivery time per batch")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args.redis_url, args.prefix, args.lease_ms, args.batch, args.log, args.latency_ms))


if __name__ == "__main__":
    main()
