"""A zsched worker process for the benchmarks: the real ``zsched.Worker`` with ``InboxDelivery`` (inbox XADD +
PUBLISH; websocket-only notifications delivered by its claim script itself), its observer recording when each
notification left. SIGTERM stops it; it then writes
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

from zsched import AsyncScheduler
from zsched.connection import connect
from zsched.delivery import InboxDelivery
from zsched.delivery.ownership import Ownership
from zsched.delivery.worker import Worker
from zsched.engine import Core
from zsched.engine.keys import Keyspace, Tags
from zsched.engine.ownership import OWNER_LEASE_MS
from zsched.models import Notification


class Recorder:
    """The worker's observer: notes, per notification sent, how late the worker knew it had left (wall clock, ms
    after its due time: when the claim that delivered it answered, or the inbox call and ack did)."""

    def __init__(self) -> None:
        self.records: list[tuple[int, float]] = []

    def observe(self, kind: str, n: Notification, late_ms: float) -> None:
        """Note each notification sent, and how late."""
        if kind == "sent":
            self.records.append((n.id, time.time() * 1000 - n.scheduled_at.timestamp() * 1000))


async def run(
    url: str,
    prefix: str,
    out: str,
    batch: int,
    purge_every_s: float = 3600.0,
    owner_lease_ms: int = OWNER_LEASE_MS,
    partitions: int = 1,
    tags: Tags = "plain",
) -> None:
    """Run the worker until SIGTERM; write the records to ``out``. It owns its partitions (as ``zsched worker``
    does) unless ``owner_lease_ms`` is 0. A cluster URL gets a cluster client, as ``zsched worker`` does."""
    connection = connect(url, for_asyncio=True)
    scheduler = AsyncScheduler(connection, core=Core(Keyspace(prefix, partitions, tags=tags)))
    recorder = Recorder()
    delivery = InboxDelivery(connection, scheduler.core.keys)  # its claim delivers websocket-only notifications
    ownership = Ownership(scheduler, lease_ms=owner_lease_ms) if owner_lease_ms else None
    worker = Worker(
        scheduler, delivery, batch=batch, purge_every_s=purge_every_s, observer=recorder.observe, ownership=ownership
    )
    worker.install_signal_handlers()
    if ownership is not None:
        await ownership.balance_once()  # owns its partitions before it says it is ready
        worker._follow_ownership()
    await worker._subscribe()
    print("ready", flush=True)
    try:
        await worker.run()
    finally:
        await scheduler.close()
        with open(out, "w") as f:
            json.dump(recorder.records, f)


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse flags, run until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--url", default=os.environ.get("ZSCHED_REDIS_URL"), help="default: ZSCHED_REDIS_URL (off argv)"
    )
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--owner-lease-ms",
        type=int,
        default=int(os.environ.get("ZSCHED_OWNER_LEASE_MS", OWNER_LEASE_MS)),
        help="the partitions' owner lease, as zsched worker (default ZSCHED_OWNER_LEASE_MS or 5000; 0: no owners)",
    )
    parser.add_argument("--partitions", type=int, default=1, help="the keyspace's partitions (default 1)")
    parser.add_argument("--tags", choices=("plain", "spread"), default="plain", help="the partitions' hash tags")
    parser.add_argument("--purge-every-s", type=float, default=3600.0, help="default 3600: no purge in most runs")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("give --url or ZSCHED_REDIS_URL")
    asyncio.run(
        run(
            args.url,
            args.prefix,
            args.out,
            args.batch,
            args.purge_every_s,
            args.owner_lease_ms,
            args.partitions,
            args.tags,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
