"""The heartbeat loop a worker or gateway runs beside its work: one ``heartbeat.lua`` call every few seconds,
saying what the process is doing (``zsched.engine.processes``), and its entry taken off when it stops cleanly.
A worker's beat also adds what it delivered since the last one to the minute's figures (``engine.minutes``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping

import redis

from .. import __version__
from ..client import AsyncScheduler
from ..engine.minutes import Tally, add_minute
from ..engine.presence import SocketReporter
from ..engine.processes import BEAT_EVERY_MS, KEEP_MS, Kind, ProcessInfo, beat, forget
from ..errors import ConfigError, UnavailableError

log = logging.getLogger("zsched.heartbeat")

STOP_S = 2.0
"""How long a stopping process tries to take itself off the list."""


class Heartbeat:
    """Beats for one process every ``every_ms`` until ``stop``; ``in_flight``, ``sockets`` and ``recipients`` are
    read at each beat (how many notifications it is delivering now, how many WebSockets are open, and how many per
    recipient; None: not a gateway)."""

    def __init__(
        self,
        scheduler: AsyncScheduler,
        kind: Kind,
        *,
        every_ms: int = BEAT_EVERY_MS,
        keep_ms: int = KEEP_MS,
        in_flight: Callable[[], int] = lambda: 0,
        sockets: Callable[[], int] | None = None,
        recipients: Callable[[], Mapping[str, int]] | None = None,
        tally: Tally | None = None,
        partitions: Callable[[], list[int]] | None = None,
    ) -> None:
        if every_ms < 10 or keep_ms < 3 * every_ms:
            raise ConfigError(
                f"a heartbeat must come at least 10 ms apart and be kept for three (ZSCHED_BEAT_EVERY_S); "
                f"got every {every_ms} ms, kept {keep_ms} ms",
                "beat_every_s",
            )
        self.scheduler = scheduler
        self.kind: Kind = kind
        self.every_ms = every_ms
        self.keep_ms = keep_ms
        self.in_flight = in_flight
        self.sockets = sockets
        self.partitions = partitions  # a worker's: the partitions it works on now (None: every one)
        self.tally = tally  # a worker's outcomes, added to the minute's figures in Redis at each beat
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{self.host}:{self.pid}:{secrets.token_hex(3)}"
        self.started_ms = int(time.time() * 1000)
        # A gateway's sockets per recipient, written at each beat (the changes since the last), so any process can
        # say who is connected where (``engine.presence``).
        self.recipients = recipients
        self.reporter = SocketReporter(self.id, keep_ms) if recipients is not None else None
        self._task: asyncio.Task[None] | None = None
        # Checked by the loop, not only the task's cancel: on Python 3.11, asyncio.wait_for may swallow a cancel
        # that lands as its wait ends (gh-86296), and the loop would go on beating for ever.
        self._stopping = False
        self._nudged: asyncio.Event | None = None  # set: beat now (what the process says changed)

    def describe(self) -> ProcessInfo:
        """What this process says about itself now."""
        return ProcessInfo(
            id=self.id,
            kind=self.kind,
            host=self.host,
            pid=self.pid,
            started_ms=self.started_ms,
            version=__version__,
            partitions=(
                self.partitions() if self.partitions else [p.index for p in self.scheduler.core.keys.partitions]
            ),
            in_flight=self.in_flight(),
            sockets=None if self.sockets is None else self.sockets(),
            beat_every_ms=self.every_ms,
        )

    async def beat_once(self) -> None:
        """One heartbeat now, and the outcomes counted since the last one added to this minute's figures."""
        core = self.scheduler.core
        await self.scheduler.run(beat(core, self.describe(), self.keep_ms))
        if self.reporter is not None and self.recipients is not None:
            await self.scheduler.run(self.reporter.report(core, self.recipients()))
        if self.tally is not None:
            counts = self.tally.take()
            try:
                await self.scheduler.run(add_minute(core, counts))
            except BaseException:
                self.tally.put_back(counts)  # counted again at the next beat
                raise

    def nudge(self) -> None:
        """Beat now rather than at the next interval (a worker's partitions changed), if the loop runs."""
        if self._nudged is not None:
            self._nudged.set()

    async def run(self) -> None:
        """Beat until cancelled; a beat that fails (Redis down) is logged and the next one tried on time."""
        self._nudged = asyncio.Event()
        while not self._stopping:
            self._nudged.clear()
            try:
                await self.beat_once()
            except (UnavailableError, redis.RedisError, OSError) as exc:  # the worker says Redis is down, not this
                log.debug("heartbeat of %s failed: %s", self.id, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudged.wait(), self.every_ms / 1000)

    def start(self) -> None:
        """Run the loop as a task of the running event loop."""
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name="zsched-heartbeat")

    async def stop(self) -> None:
        """Stop beating and take this process off the list (a clean stop is not a late heartbeat)."""
        task, self._task = self._task, None
        self._stopping = True
        if task is not None:
            task.cancel()
            await asyncio.wait([task], timeout=STOP_S)
        # Bounded: a Redis that hangs must not hold up a shutdown; the entry then goes late and expires.
        with contextlib.suppress(UnavailableError, redis.RedisError, OSError, TimeoutError):
            await asyncio.wait_for(self.scheduler.run(forget(self.scheduler.core, self.id)), STOP_S)
