"""The loop that keeps a worker's share of the partitions (``zsched.engine.ownership``): a round every third of
the owner lease (at most a second), renewing, giving up and taking leases, and the partitions the worker may claim
from now. A dead worker's partitions are taken within one owner lease and one round after its last renewal.

The worker asks ``owned()`` before each round of claims, a lookup in memory: owning costs a claim no round trip.
A lease counts as held until ``HELD_FRACTION`` of it has passed since the round that renewed it was sent, so this
worker stops claiming a partition before the server lets another take it (unless the clocks' rates differ by
more than a tenth). A worker that cannot reach Redis stops claiming when its leases run out, and one that stops
cleanly gives them up at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time

import redis

from ..client import AsyncScheduler
from ..engine.keys import Partition
from ..engine.ownership import OWNER_LEASE_MS, balance, leave
from ..errors import ConfigError, UnavailableError

log = logging.getLogger("zsched.ownership")

HELD_FRACTION = 0.9
"""The part of a lease this worker counts on, from when the round that renewed it was sent."""
ROUND_MAX_S = 1.0
"""Rounds come at least this often (and every third of a lease when that is shorter), so a partition given up or
left by a worker that stopped cleanly is taken within about one round."""
CATCH_UP_S = 0.1
"""While a worker owns less than its share (it just joined, or another is giving partitions up), it rounds this
often, so a partition given up to it waits about this long unclaimed."""
STOP_S = 2.0
"""How long a stopping worker tries to give its leases up."""


class Ownership:
    """Holds this worker's share of the partitions' owner leases, a round every ``lease_ms / 3`` (at most
    ``ROUND_MAX_S``, and ``CATCH_UP_S`` while it owns less than its share)."""

    def __init__(self, scheduler: AsyncScheduler, *, lease_ms: int = OWNER_LEASE_MS, worker_id: str = "") -> None:
        if lease_ms < 30:
            raise ConfigError(
                f"an owner lease must last at least 30 ms (ZSCHED_OWNER_LEASE_MS); got {lease_ms} ms", "owner_lease_ms"
            )
        self.scheduler = scheduler
        self.lease_ms = lease_ms
        self.every_s = min(lease_ms / 3000, ROUND_MAX_S)
        self.short = False  # owns less than its share after the last round
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._held: dict[int, float] = {}  # partition index -> monotonic time this worker stops counting on it
        self._task: asyncio.Task[None] | None = None
        # Checked by the loop, not only the task's cancel: on Python 3.11, asyncio.wait_for may swallow a cancel
        # that lands as its wait ends (gh-86296), and the rounds would go on for ever.
        self._stopping = False

    def owned(self) -> tuple[Partition, ...]:
        """The partitions this worker may claim from now (their leases are its own and not about to run out)."""
        now = time.monotonic()
        parts = self.scheduler.core.keys.partitions
        return tuple(parts[i] for i, until in sorted(self._held.items()) if until > now)

    def forget(self) -> None:
        """Drop what this worker holds, after a reshard opened new partitions: its leases were on the old ones
        (they run out by themselves); the next round takes a share of the new."""
        self._held = {}

    async def balance_once(self) -> None:
        """One round: renew, give up beyond the share, take free partitions up to it."""
        sent = time.monotonic()
        held = list(self._held)  # those run out here too: the server may still count them this worker's
        result = await self.scheduler.run(balance(self.scheduler.core, self.id, held, self.lease_ms))
        until = sent + self.lease_ms * HELD_FRACTION / 1000
        self._held = {i: until for i in result.owned}
        self.short = len(result.owned) < result.share
        if result.taken or result.released or result.lost:
            log.info(
                "worker %s owns partitions %s (share %d of %d live workers; took %s, gave up %s, lost %s)",
                self.id,
                result.owned,
                result.share,
                len(result.live),
                result.taken,
                result.released,
                result.lost,
            )

    async def run(self) -> None:
        """Rounds until stopped; a round that fails (Redis down) is logged and the next one tried on time."""
        while not self._stopping:
            try:
                await self.balance_once()
            except (UnavailableError, redis.RedisError, OSError) as exc:
                log.warning(
                    "worker %s could not renew its partitions (%s); retrying in %.1f s", self.id, exc, self.every_s
                )
            await asyncio.sleep(min(self.every_s, CATCH_UP_S) if self.short else self.every_s)

    def start(self) -> None:
        """Run the rounds as a task of the running event loop."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self.run(), name="zsched-ownership")

    async def stop(self) -> None:
        """Stop the rounds and give every lease up, so the other workers take them at their next round."""
        task, self._task = self._task, None
        self._stopping = True
        if task is not None:
            task.cancel()
            await asyncio.wait([task], timeout=STOP_S)
        held, self._held = list(self._held), {}
        # Bounded: a Redis that hangs must not hold up a shutdown; the leases then run out by themselves.
        with contextlib.suppress(UnavailableError, redis.RedisError, OSError, TimeoutError):
            await asyncio.wait_for(self.scheduler.run(leave(self.scheduler.core, self.id, held, self.lease_ms)), STOP_S)
