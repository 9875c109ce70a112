"""Test mode for your project's tests: the real scripts, a clock the test moves, and an outbox to assert on.

    from zsched.testing import ZschedTestServer

    with ZschedTestServer(now=datetime(2030, 1, 7, 8, 0, tzinfo=UTC)) as zt:
        zt.scheduler.schedule(["bob"], "Standup", "in room B2", at=datetime(2030, 1, 7, 9, 0, tzinfo=UTC))
        [n] = zt.pending("bob")                                  # scheduled for bob at 9:00, not yet sent
        assert zt.run_due() == []                                # 8:00: nothing is due
        [sent] = zt.run_due(advance=timedelta(hours=1))          # 9:00: delivered into the outbox
        assert zt.outbox == [sent] and zt.scheduler.status(sent.id).scheduled_status == "sent"

Like Celery's eager mode, but nothing is faked: schedule, claim, ack, retry and reap run the same Lua scripts
as production, on the valkey-server shipped with zsched (or a Redis you name). Two things are the test's:
the clock (every script reads ``zt.clock`` instead of the server's TIME, so "due" is what the test says) and
the delivery (``run_due`` appends to ``zt.outbox`` instead of publishing). Code under test must schedule
through ``zt.scheduler`` or ``zt.async_scheduler()`` (their core holds the clock): with Django,
``zsched.contrib.django.use_scheduler``; with FastAPI, a dependency override. pytest users get one per test
from the ``zsched_server`` fixture of ``zsched.contrib.pytest``.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import redis
import redis.asyncio as aioredis

from .client import AsyncScheduler, Scheduler
from .connection import connection_options
from .delivery.channel import Outcome
from .delivery.worker import Worker
from .embedded import EmbeddedServer
from .engine import Core, Keyspace, RetryPolicy
from .models import Notification

MAX_ROUNDS = 10_000
"""``run_due`` gives up after this many worker rounds that each delivered something (a loop, not a backlog)."""


class ManualClock:
    """Epoch milliseconds that move only when told to; callable, as ``Core(clock=...)`` wants."""

    def __init__(self, now: datetime | None = None) -> None:
        self.ms = _ms(now if now is not None else datetime.now(UTC))

    def __call__(self) -> int:
        return self.ms

    @property
    def now(self) -> datetime:
        """The clock's time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.ms / 1000, UTC)

    def advance(self, by: timedelta | float) -> None:
        """Move forward by a timedelta or a number of seconds."""
        seconds = by.total_seconds() if isinstance(by, timedelta) else float(by)
        if seconds < 0:
            raise ValueError(f"the clock only moves forward; got {seconds} s")
        self.ms += round(seconds * 1000)

    def set(self, when: datetime) -> None:
        """Move forward to ``when`` (an aware datetime not before the clock's time)."""
        target = _ms(when)
        if target < self.ms:
            raise ValueError(f"the clock only moves forward; it reads {self.now.isoformat()}, got {when.isoformat()}")
        self.ms = target


class _Outbox:
    """The delivery ``run_due`` hands the worker: appends each notification to a list; never fails."""

    def __init__(self, into: list[Notification]) -> None:
        self.into = into
        self.attempted = 0

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]:
        self.attempted += len(batch)
        self.into.extend(batch)
        return [None] * len(batch)


class ZschedTestServer:
    """A keyspace on a real server with a manual clock: schedule through ``scheduler``, deliver with ``run_due``.

    Without ``url`` it starts a throwaway embedded valkey-server (no AOF, a temporary folder, stopped by
    ``close``). With ``url`` it uses that server and, when no ``prefix`` was given, a fresh prefix whose keys
    ``close`` deletes; a ``prefix`` you pass is never deleted. ``now`` pins the clock's start (default: now);
    ``retry`` is the retry policy (default: zsched's, 5, 10 then 20 minutes).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str | None = None,
        partitions: int = 1,
        now: datetime | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.clock = ManualClock(now)
        self.prefix = prefix or f"zsched-test-{uuid.uuid4().hex[:12]}"
        self.core = Core(Keyspace(self.prefix, partitions), retry=retry or RetryPolicy(), clock=self.clock)
        self.outbox: list[Notification] = []
        """Every notification ``run_due`` delivered, in order."""
        self._url = url
        self._owns_keys = prefix is None
        self._server: EmbeddedServer | None = None
        self._data_dir: str | None = None
        self._scheduler: Scheduler | None = None

    def start(self) -> ZschedTestServer:
        """Start the embedded server (when no ``url`` was given) and connect."""
        if self._scheduler is None:
            if self._url is None:
                self._data_dir = tempfile.mkdtemp(prefix="zsched-test-")
                self._server = EmbeddedServer(self._data_dir, persistent=False).start()
            self._scheduler = Scheduler(redis.Redis.from_url(self.url, **connection_options()), core=self.core)
        return self

    def close(self) -> None:
        """Disconnect; delete this test's keys (a generated prefix) or stop the server this object started."""
        if self._scheduler is not None:
            if self._owns_keys and self._server is None:
                keys = list(self._scheduler.redis.scan_iter(match=f"{self.prefix}:*", count=1000))
                if keys:
                    self._scheduler.redis.unlink(*keys)
            self._scheduler.close()
            self._scheduler = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None

    def __enter__(self) -> ZschedTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The server's redis:// URL (with its password: do not print it)."""
        if self._url is not None:
            return self._url
        if self._server is None:
            raise RuntimeError("the test server is not started; use `with ZschedTestServer() as zt:` or start()")
        return self._server.url

    @property
    def scheduler(self) -> Scheduler:
        """A sync scheduler on the test keyspace, reading the manual clock."""
        if self._scheduler is None:
            raise RuntimeError("the test server is not started; use `with ZschedTestServer() as zt:` or start()")
        return self._scheduler

    def async_scheduler(self) -> AsyncScheduler:
        """A new asyncio scheduler on the test keyspace and clock, for the event loop that uses it; close it."""
        return AsyncScheduler(aioredis.Redis.from_url(self.url, **connection_options(for_asyncio=True)), core=self.core)

    @property
    def now(self) -> datetime:
        """The manual clock's time."""
        return self.clock.now

    def advance(self, by: timedelta | float) -> None:
        """Move the clock forward by a timedelta or a number of seconds; nothing is delivered until ``run_due``."""
        self.clock.advance(by)

    def pending(self, recipient: str | int | None = None) -> list[Notification]:
        """What is scheduled and not yet delivered (for ``recipient``, or everyone), newest first."""
        found: list[Notification] = []
        cursor: int | str | None = None
        while True:
            page = self.scheduler.list(recipient=recipient, status="pending", limit=500, cursor=cursor)
            found.extend(page.items)
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    def run_due(self, *, advance: timedelta | float | None = None, until: datetime | None = None) -> list[Notification]:
        """Deliver everything due, through the real claim and ack scripts, into ``outbox``; returns what this
        call delivered. ``advance`` (a timedelta or seconds) or ``until`` (a datetime) moves the clock first.
        A failed attempt's retry is due later, on the clock, like any other schedule."""
        return asyncio.run(self.arun_due(advance=advance, until=until))

    async def arun_due(
        self, *, advance: timedelta | float | None = None, until: datetime | None = None
    ) -> list[Notification]:
        """``run_due`` for a test already inside an event loop."""
        if advance is not None:
            self.clock.advance(advance)
        if until is not None:
            self.clock.set(until)
        delivered: list[Notification] = []
        outbox = _Outbox(delivered)
        async with self.async_scheduler() as zs:
            worker = Worker(zs, outbox)
            for _ in range(MAX_ROUNDS):
                before = outbox.attempted
                await worker.advance_recurring()  # recurring schedules whose occurrence's time came move on
                await worker.tick()  # also reaps leases expired on the clock, as a running worker would
                if outbox.attempted == before:
                    break
            else:
                raise RuntimeError(f"run_due still found due notifications after {MAX_ROUNDS} rounds")
        self.outbox.extend(delivered)
        return delivered


def _ms(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError(f"the clock needs an aware datetime; got {when.isoformat()} (add tzinfo=UTC)")
    return int(when.timestamp() * 1000)
