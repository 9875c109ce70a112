"""``Scheduler`` (sync) and ``AsyncScheduler`` (asyncio): the same operations from ``core``, two drivers.

with Scheduler.embedded() as zs:                      # or Scheduler.from_url("redis://...")
    r = zs.schedule(["alice", "bob"], "Meeting", "In 30 minutes", delay=timedelta(minutes=30))
    zs.status(r.notification_ids[0]).scheduled_status  # 'pending'
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import redis
import redis.asyncio as aioredis
from msgspec import UNSET, UnsetType

from . import tracing
from .client_templates import AsyncTemplates, SyncTemplates
from .connection import (
    CONNECT_TIMEOUT_S,
    RETRIES,
    SOCKET_TIMEOUT_S,
    UNAVAILABLE,
    Driver,
    T,
    connection_options,
    queue_step,
    send_step,
    send_step_async,
    sentinel_of,
)
from .embedded import DEFAULT_DATA_DIR, EmbeddedServer
from .engine import reshard
from .engine.core import Core, Op, Step
from .engine.layout import check_layout
from .engine.minutes import Minute, read_minutes
from .engine.presence import Presence, recipient_sockets
from .engine.processes import ProcessState, list_processes
from .engine.reshard import ReshardProgress
from .engine.tables import TablePage, table_page
from .errors import UnavailableError
from .models import (
    BatchChange,
    BatchSummary,
    Contact,
    Erasure,
    Notification,
    Page,
    Pauses,
    RecurringPage,
    RecurringSchedule,
    ScheduleResult,
    Stats,
)

RESHARD_WAIT_S = 0.2
"""How long a reshard waits between passes that found nothing to move (only notifications workers hold)."""


class Scheduler(Driver, SyncTemplates):
    """Schedules, cancels and inspects notifications over a sync redis-py connection."""

    def __init__(
        self, connection: redis.Redis, *, core: Core | None = None, server: EmbeddedServer | None = None, **options: Any
    ) -> None:
        super().__init__(connection, core, server, **options)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout_s: float = SOCKET_TIMEOUT_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        retries: int = RETRIES,
        **options: Any,
    ) -> Scheduler:
        """Connect to the Redis at ``url`` with bounded timeouts and ``retries`` resends (see
        ``connection_options``); ``options`` go to ``Core`` (keyspace, retry, retention, clock)."""
        limits = connection_options(
            socket_timeout_s=socket_timeout_s, connect_timeout_s=connect_timeout_s, retries=retries
        )
        return cls(redis.Redis.from_url(url, **limits), **options)

    @classmethod
    def embedded(cls, data_dir: Path | str = DEFAULT_DATA_DIR, **options: Any) -> Scheduler:
        """Use the embedded valkey-server on ``data_dir``, starting it if none runs there yet."""
        server = EmbeddedServer(data_dir).start()
        return cls(redis.Redis.from_url(server.url, **connection_options()), server=server, **options)

    def run(self, op: Op[T]) -> T:
        """Drive one core operation to its result over this connection (the first also checks the layout)."""
        return self._drive(op, check_layout_first=True)

    def ensure_layout(self) -> None:
        """Record or compare the keyspace's partition count, once; ``LayoutError`` when it differs."""
        if not self.layout_checked:
            self._drive(check_layout(self.core))
            self.layout_checked = True

    def _drive(self, op: Op[T], *, check_layout_first: bool = False) -> T:
        if check_layout_first and not self.layout_checked:
            # Before the op builds its first step: the layout may name generations (a reshard) that route ids.
            # Redis down: the op's own validation still answers first, and its first step reports the outage.
            with contextlib.suppress(UnavailableError):
                self.ensure_layout()
        try:
            steps = next(op)  # arguments are validated before the first step
            while True:
                if len(steps) == 1:  # most operations: one step, sent as it is
                    steps = op.send([send_step(self.redis, self.scripts, steps[0])])
                else:
                    steps = op.send(self._execute(steps))
        except StopIteration as done:
            result: T = done.value
            return result
        except UNAVAILABLE as exc:
            raise UnavailableError(f"Redis did not answer: {exc}") from exc

    def _execute(self, steps: list[Step]) -> list[Any]:
        if self._one_by_one(steps):
            return [send_step(self.redis, self.scripts, step) for step in steps]
        pipe = self.redis.pipeline(transaction=False)
        try:
            for step in steps:
                queue_step(pipe, self.scripts, step)
            return list(pipe.execute())
        finally:
            pipe.reset()  # execute releases its connection only once sent: a failed script check holds one

    def schedule(
        self,
        recipients: Iterable[object],
        title: str,
        message: str,
        *,
        at: datetime | None = None,
        delay: timedelta | float | None = None,
        type: str = "system",
        priority: str = "normal",
        data: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        created_by: str | None = None,
        channels: Iterable[str] = (),
        expires_at: datetime | None = None,
        on_late: str = "send",
        late_after: timedelta | float | None = None,
        collapse_key: str | None = None,
        spread: timedelta | float | None = None,
        digest_key: str | None = None,
        digest_window: timedelta | float | None = None,
        digest_max: int | None = None,
        deliver_at_local: str | None = None,
        local_date: date | None = None,
    ) -> ScheduleResult:
        """One pending notification per distinct recipient, due ``at`` (aware datetime) or after ``delay``.

        Not sent when claimed at or after ``expires_at``, nor (``on_late="skip"``) more than ``late_after``
        (default 60 s) past its due time: it ends ``expired``. With ``collapse_key``, each recipient's pending
        notification scheduled earlier with the same key ends ``collapsed``. With ``spread`` (seconds or a
        timedelta), the recipients are due spread evenly over that window after the due time. With ``digest_key``,
        a recipient's notifications with that key due within ``digest_window`` (default ``ZSCHED_DIGEST_WINDOW_MS``)
        of the first go out as one delivery per channel, a count plus the items, at most ``digest_max`` (default
        ``ZSCHED_DIGEST_MAX``) in one; none before its own due time, and each one's ``digest`` names the digest.
        ``deliver_at_local="09:00"`` with ``local_date`` (instead of ``at``/``delay``) makes each recipient due
        at 09:00 of that date in their own zone; unless ``priority`` is urgent, one due inside its recipient's
        quiet hours waits until they end (see ``set_contact``)."""
        with tracing.schedule_span() as record:
            result = self._drive(
                self.core.schedule_for(
                    recipients,
                    title,
                    message,
                    at=at,
                    delay=delay,
                    type=type,
                    priority=priority,
                    data=data,
                    idempotency_key=idempotency_key,
                    created_by=created_by,
                    channels=channels,
                    expires_at=expires_at,
                    on_late=on_late,
                    late_after=late_after,
                    collapse_key=collapse_key,
                    spread=spread,
                    digest_key=digest_key,
                    digest_window=digest_window,
                    digest_max=digest_max,
                    deliver_at_local=deliver_at_local,
                    local_date=local_date,
                ),
                check_layout_first=True,
            )
            record(result)
        return result

    def cancel(self, notification_id: int | str) -> Notification:
        """Cancel a pending notification and return it; NotFoundError / NotPendingError otherwise."""
        return self.run(self.core.cancel(notification_id))

    def cancel_batch(self, batch_id: str) -> BatchChange:
        """Cancel every still-pending notification of one schedule call (its ``batch_id``) in one request."""
        return self.run(self.core.cancel_batch(batch_id))

    def reschedule_batch(
        self, batch_id: str, *, at: datetime | None = None, delay: timedelta | float | None = None
    ) -> BatchChange:
        """Move every still-pending notification of one schedule call to ``at`` (or after ``delay``)."""
        return self.run(self.core.reschedule_batch(batch_id, at=at, delay=delay))

    def batch_status(self, batch_id: str) -> BatchSummary:
        """How many of one schedule call's notifications are in each status."""
        return self.run(self.core.batch_status(batch_id))

    def edit(
        self,
        notification_id: int | str,
        *,
        title: str | None = None,
        message: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> Notification:
        """Give a pending notification a new title, message or data (None: unchanged) and return it."""
        return self.run(self.core.edit(notification_id, title=title, message=message, data=data))

    def edit_batch(
        self, batch_id: str, *, title: str | None = None, message: str | None = None, data: dict[str, Any] | None = None
    ) -> BatchChange:
        """Give every pending notification of one schedule call a new title, message or data, in one request."""
        return self.run(self.core.edit_batch(batch_id, title=title, message=message, data=data))

    def reschedule(
        self, notification_id: int | str, *, at: datetime | None = None, delay: timedelta | float | None = None
    ) -> Notification:
        """Move a pending notification to a new time and return it."""
        return self.run(self.core.reschedule(notification_id, at=at, delay=delay))

    def status(self, notification_id: int | str) -> Notification:
        """The notification as it is now; NotFoundError if unknown or purged."""
        return self.run(self.core.status(notification_id))

    def list(
        self,
        *,
        recipient: str | int | None = None,
        created_by: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: int | str | None = None,
    ) -> Page:
        """Notifications newest first: a recipient's, a creator's (across partitions), or all when neither is
        given; ``next_cursor`` is None only when nothing more matches (a page may be short before that)."""
        return self.run(
            self.core.list(recipient=recipient, created_by=created_by, status=status, limit=limit, cursor=cursor)
        )

    def list_for(
        self, recipient: str | int, *, status: str | None = None, limit: int = 50, cursor: int | str | None = None
    ) -> Page:
        """A recipient's notifications, newest first; pass ``page.next_cursor`` as ``cursor`` for more."""
        return self.run(self.core.list_for(recipient, status=status, limit=limit, cursor=cursor))

    def stats(self) -> Stats:
        """Counts per status, lifetime totals, next due time and the oldest overdue lag."""
        return self.run(self.core.stats())

    def pause(self, type: str | None = None) -> Pauses:
        """Stop delivering notifications of ``type`` (None: every notification) until ``resume``; schedules
        pile up meanwhile. Returns what is paused now."""
        return self.run(self.core.pause(type))

    def resume(self, type: str | None = None) -> Pauses:
        """Lift the pause of ``type`` (None: every pause); what waited drains in due order, priorities first.
        Returns what is still paused."""
        return self.run(self.core.resume(type))

    def pauses(self) -> Pauses:
        """What delivery is paused for, since when, and how many notifications wait aside."""
        return self.run(self.core.pauses())

    def contact(self, recipient: str | int) -> Contact:
        """The recipient's contact data: email, phone (E.164), locale; None where not set."""
        return self.run(self.core.contact(recipient))

    def set_contact(
        self,
        recipient: str | int,
        *,
        email: str | UnsetType | None = UNSET,
        phone: str | UnsetType | None = UNSET,
        locale: str | UnsetType | None = UNSET,
        zone: str | UnsetType | None = UNSET,
        quiet_hours: str | UnsetType | None = UNSET,
        opt_outs: Mapping[str, Sequence[str]] | UnsetType | None = UNSET,
        opt_out: Sequence[str] = (),
        opt_in: Sequence[str] = (),
    ) -> Contact:
        """Set the contact fields given (None removes one; the others are kept) and return the contact. ``zone``
        and ``quiet_hours`` (``22:00-07:00`` in that zone) decide when non-urgent notifications reach them.
        ``opt_out=["sms:marketing"]`` keeps notifications of a type from a channel when they are sent (``*``:
        every type, or as the channel every channel); ``opt_in`` removes such entries, ``opt_outs`` replaces all."""
        return self.run(
            self.core.set_contact(
                recipient,
                email=email,
                phone=phone,
                locale=locale,
                zone=zone,
                quiet_hours=quiet_hours,
                opt_outs=opt_outs,
                opt_out=opt_out,
                opt_in=opt_in,
            )
        )

    def erase_recipient(self, recipient: str | int) -> Erasure:
        """Remove the recipient's contact data and inbox (a data-protection erasure); what was removed."""
        return self.run(self.core.erase_recipient(recipient))

    def table(
        self, table: str, *, cursor: str | None = None, limit: int = 50, partition: int | None = None
    ) -> TablePage:
        """One page of a table (upcoming, processing, retrying, failed, sent, cancelled); pass
        ``page.next_cursor`` as ``cursor`` for the next."""
        return self.run(table_page(self.core, table, cursor=cursor, limit=limit, partition=partition))

    def processes(self) -> builtins.list[ProcessState]:
        """Every worker and gateway from its heartbeat, each flagged ``late`` when its heartbeat is overdue."""
        return self.run(list_processes(self.core))

    def throughput(self, minutes: int = 60) -> builtins.list[Minute]:
        """Deliveries and lateness per minute over every worker, the last ``minutes`` (a day is kept)."""
        return self.run(read_minutes(self.core, minutes))

    def create_recurring(
        self,
        recipients: Iterable[object],
        title: str,
        message: str,
        *,
        cron: str | None = None,
        every: timedelta | float | None = None,
        timezone: str = "UTC",
        start: datetime | None = None,
        end: datetime | None = None,
        max_count: int | None = None,
        catch_up: str = "skip",
        type: str = "system",
        priority: str = "normal",
        data: dict[str, Any] | None = None,
        created_by: str | None = None,
        channels: Iterable[str] = (),
        idempotency_key: str | None = None,
    ) -> RecurringSchedule:
        """A recurring schedule firing on ``cron`` (5 fields, on ``timezone``'s wall clock) or ``every`` (seconds or
        a timedelta) from ``start`` until ``end`` or ``max_count`` occurrences; each occurrence is an ordinary
        notification. ``catch_up`` (``skip`` or ``last``) says what happens to times missed in an outage; a retry with
        the same ``idempotency_key`` returns the schedule the first call created."""
        return self.run(
            self.core.create_recurring(
                recipients,
                title,
                message,
                cron=cron,
                every=every,
                timezone=timezone,
                start=start,
                end=end,
                max_count=max_count,
                catch_up=catch_up,
                type=type,
                priority=priority,
                data=data,
                created_by=created_by,
                channels=channels,
                idempotency_key=idempotency_key,
            )
        )

    def recurring(self, schedule_id: int | str) -> RecurringSchedule:
        """A recurring schedule as it is now; RecurringNotFoundError if unknown or deleted."""
        return self.run(self.core.recurring(schedule_id))

    def list_recurring(
        self, *, created_by: str | None = None, limit: int = 50, cursor: int | str | None = None
    ) -> RecurringPage:
        """Recurring schedules by id (one creator's, or all); pass ``page.next_cursor`` as ``cursor`` for more."""
        return self.run(self.core.list_recurring(created_by=created_by, limit=limit, cursor=cursor))

    def preview_recurring(self, schedule_id: int | str, count: int = 10) -> builtins.list[datetime]:
        """The next ``count`` times a recurring schedule fires from now."""
        return self.run(self.core.preview_recurring(schedule_id, count))

    def pause_recurring(self, schedule_id: int | str) -> RecurringSchedule:
        """Stop a recurring schedule creating occurrences and cancel its pending one (``resume_recurring``)."""
        return self.run(self.core.pause_recurring(schedule_id))

    def resume_recurring(self, schedule_id: int | str) -> RecurringSchedule:
        """Restart a paused recurring schedule from its next time after now (times passed while paused do not fire)."""
        return self.run(self.core.resume_recurring(schedule_id))

    def delete_recurring(self, schedule_id: int | str) -> RecurringSchedule:
        """Remove a recurring schedule and cancel its pending occurrence; returns it as it was."""
        return self.run(self.core.delete_recurring(schedule_id))

    def reshard(
        self,
        partitions: int,
        *,
        batch: int = 100,
        max_moves: int | None = None,
        on_progress: Callable[[ReshardProgress], None] | None = None,
    ) -> ReshardProgress:
        """Move every pending notification to ``partitions`` partitions while producers and workers run (see
        ``zsched.engine.reshard``); returns when the move is over, or after about ``max_moves`` due entries
        (run it again to finish). Safe to run again after an interruption; ``on_progress`` gets each pass."""
        step = self._drive(reshard.open_generation(self.core, partitions))
        moved = entries = 0
        while not step.done:
            budget = None if max_moves is None else max_moves - entries
            if budget is not None and budget <= 0:
                return msgspec.structs.replace(step, moved=moved, entries=entries)
            step = self._drive(reshard.move_some(self.core, partitions, batch=batch, budget=budget))
            moved, entries = moved + step.moved, entries + step.entries
            if on_progress is not None:
                on_progress(step)
            if not step.done and not step.entries:  # what workers hold there: wait for their acks or retries
                time.sleep(RESHARD_WAIT_S)
        done = self._drive(reshard.finish(self.core, partitions))
        return msgspec.structs.replace(done, moved=moved, entries=entries)

    def sockets(self, recipient: object) -> Presence:
        """How many WebSockets ``recipient`` has open, in total and per gateway, as of each gateway's last
        heartbeat (a late gateway is listed but not counted)."""
        return self.run(recipient_sockets(self.core, recipient))

    def close(self) -> None:
        """Close the connection, and stop the embedded server if this scheduler started it."""
        self.redis.close()
        if (sentinel := sentinel_of(self.redis)) is not None:
            sentinel.close()
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncScheduler(Driver, AsyncTemplates):
    """The same operations as ``Scheduler``, as coroutines over a ``redis.asyncio`` connection."""

    def __init__(
        self,
        connection: aioredis.Redis,
        *,
        core: Core | None = None,
        server: EmbeddedServer | None = None,
        **options: Any,
    ) -> None:
        super().__init__(connection, core, server, **options)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout_s: float = SOCKET_TIMEOUT_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        retries: int = RETRIES,
        **options: Any,
    ) -> AsyncScheduler:
        """Connect to the Redis at ``url`` with bounded timeouts and ``retries`` resends (see
        ``connection_options``); ``options`` go to ``Core``."""
        limits = connection_options(
            socket_timeout_s=socket_timeout_s, connect_timeout_s=connect_timeout_s, retries=retries, for_asyncio=True
        )
        return cls(aioredis.Redis.from_url(url, **limits), **options)

    @classmethod
    def embedded(cls, data_dir: Path | str = DEFAULT_DATA_DIR, **options: Any) -> AsyncScheduler:
        """Use the embedded valkey-server on ``data_dir``, starting it if none runs there yet."""
        server = EmbeddedServer(data_dir).start()
        return cls(
            aioredis.Redis.from_url(server.url, **connection_options(for_asyncio=True)), server=server, **options
        )

    async def run(self, op: Op[T]) -> T:
        """Drive one core operation to its result over this connection (the first also checks the layout)."""
        return await self._drive(op, check_layout_first=True)

    async def ensure_layout(self) -> None:
        """Record or compare the keyspace's partition count, once; ``LayoutError`` when it differs."""
        if not self.layout_checked:
            await self._drive(check_layout(self.core))
            self.layout_checked = True

    async def _drive(self, op: Op[T], *, check_layout_first: bool = False) -> T:
        if check_layout_first and not self.layout_checked:
            # Before the op builds its first step: the layout may name generations (a reshard) that route ids.
            # Redis down: the op's own validation still answers first, and its first step reports the outage.
            with contextlib.suppress(UnavailableError):
                await self.ensure_layout()
        try:
            steps = next(op)  # arguments are validated before the first step
            while True:
                if len(steps) == 1:  # most operations: one step, awaited here (gather would make it a task)
                    steps = op.send([await send_step_async(self.redis, self.scripts, steps[0])])
                else:
                    steps = op.send(await self._execute(steps))
        except StopIteration as done:
            result: T = done.value
            return result
        except UNAVAILABLE as exc:
            raise UnavailableError(f"Redis did not answer: {exc}") from exc

    async def _execute(self, steps: Sequence[Step]) -> list[Any]:
        if self._one_by_one(steps):
            return list(await asyncio.gather(*(send_step_async(self.redis, self.scripts, step) for step in steps)))
        pipe = self.redis.pipeline(transaction=False)
        try:
            for step in steps:
                queued = queue_step(pipe, self.scripts, step)
                if asyncio.iscoroutine(queued):  # a script call; a command returns the pipeline, which must not
                    await queued  # be awaited: awaiting a cluster pipeline re-initializes it, dropping the queue
            return list(await pipe.execute())
        finally:
            # execute releases its connection only once the commands went out: the SCRIPT EXISTS it sends first
            # holds one, so a failure or a cancel there would leave it to the garbage collector (ResourceWarning)
            await pipe.reset()

    async def schedule(
        self,
        recipients: Iterable[object],
        title: str,
        message: str,
        *,
        at: datetime | None = None,
        delay: timedelta | float | None = None,
        type: str = "system",
        priority: str = "normal",
        data: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        created_by: str | None = None,
        channels: Iterable[str] = (),
        expires_at: datetime | None = None,
        on_late: str = "send",
        late_after: timedelta | float | None = None,
        collapse_key: str | None = None,
        spread: timedelta | float | None = None,
        digest_key: str | None = None,
        digest_window: timedelta | float | None = None,
        digest_max: int | None = None,
        deliver_at_local: str | None = None,
        local_date: date | None = None,
    ) -> ScheduleResult:
        """One pending notification per distinct recipient, due ``at`` (aware datetime) or after ``delay``.

        Not sent when claimed at or after ``expires_at``, nor (``on_late="skip"``) more than ``late_after``
        (default 60 s) past its due time: it ends ``expired``. With ``collapse_key``, each recipient's pending
        notification scheduled earlier with the same key ends ``collapsed``. With ``spread`` (seconds or a
        timedelta), the recipients are due spread evenly over that window after the due time. With ``digest_key``,
        a recipient's notifications with that key due within ``digest_window`` (default ``ZSCHED_DIGEST_WINDOW_MS``)
        of the first go out as one delivery per channel, a count plus the items, at most ``digest_max`` (default
        ``ZSCHED_DIGEST_MAX``) in one; none before its own due time, and each one's ``digest`` names the digest.
        ``deliver_at_local="09:00"`` with ``local_date`` (instead of ``at``/``delay``) makes each recipient due
        at 09:00 of that date in their own zone; unless ``priority`` is urgent, one due inside its recipient's
        quiet hours waits until they end (see ``set_contact``)."""
        with tracing.schedule_span() as record:
            result = await self._drive(
                self.core.schedule_for(
                    recipients,
                    title,
                    message,
                    at=at,
                    delay=delay,
                    type=type,
                    priority=priority,
                    data=data,
                    idempotency_key=idempotency_key,
                    created_by=created_by,
                    channels=channels,
                    expires_at=expires_at,
                    on_late=on_late,
                    late_after=late_after,
                    collapse_key=collapse_key,
                    spread=spread,
                    digest_key=digest_key,
                    digest_window=digest_window,
                    digest_max=digest_max,
                    deliver_at_local=deliver_at_local,
                    local_date=local_date,
                ),
                check_layout_first=True,
            )
            record(result)
        return result

    async def cancel(self, notification_id: int | str) -> Notification:
        """Cancel a pending notification and return it; NotFoundError / NotPendingError otherwise."""
        return await self.run(self.core.cancel(notification_id))

    async def cancel_batch(self, batch_id: str) -> BatchChange:
        """Cancel every still-pending notification of one schedule call (its ``batch_id``) in one request."""
        return await self.run(self.core.cancel_batch(batch_id))

    async def reschedule_batch(
        self, batch_id: str, *, at: datetime | None = None, delay: timedelta | float | None = None
    ) -> BatchChange:
        """Move every still-pending notification of one schedule call to ``at`` (or after ``delay``)."""
        return await self.run(self.core.reschedule_batch(batch_id, at=at, delay=delay))

    async def batch_status(self, batch_id: str) -> BatchSummary:
        """How many of one schedule call's notifications are in each status."""
        return await self.run(self.core.batch_status(batch_id))

    async def edit(
        self,
        notification_id: int | str,
        *,
        title: str | None = None,
        message: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> Notification:
        """Give a pending notification a new title, message or data (None: unchanged) and return it."""
        return await self.run(self.core.edit(notification_id, title=title, message=message, data=data))

    async def edit_batch(
        self, batch_id: str, *, title: str | None = None, message: str | None = None, data: dict[str, Any] | None = None
    ) -> BatchChange:
        """Give every pending notification of one schedule call a new title, message or data, in one request."""
        return await self.run(self.core.edit_batch(batch_id, title=title, message=message, data=data))

    async def reschedule(
        self, notification_id: int | str, *, at: datetime | None = None, delay: timedelta | float | None = None
    ) -> Notification:
        """Move a pending notification to a new time and return it."""
        return await self.run(self.core.reschedule(notification_id, at=at, delay=delay))

    async def status(self, notification_id: int | str) -> Notification:
        """The notification as it is now; NotFoundError if unknown or purged."""
        return await self.run(self.core.status(notification_id))

    async def list(
        self,
        *,
        recipient: str | int | None = None,
        created_by: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: int | str | None = None,
    ) -> Page:
        """Notifications newest first: a recipient's, a creator's (across partitions), or all when neither is
        given; ``next_cursor`` is None only when nothing more matches (a page may be short before that)."""
        return await self.run(
            self.core.list(recipient=recipient, created_by=created_by, status=status, limit=limit, cursor=cursor)
        )

    async def list_for(
        self, recipient: str | int, *, status: str | None = None, limit: int = 50, cursor: int | str | None = None
    ) -> Page:
        """A recipient's notifications, newest first; pass ``page.next_cursor`` as ``cursor`` for more."""
        return await self.run(self.core.list_for(recipient, status=status, limit=limit, cursor=cursor))

    async def stats(self) -> Stats:
        """Counts per status, lifetime totals, next due time and the oldest overdue lag."""
        return await self.run(self.core.stats())

    async def pause(self, type: str | None = None) -> Pauses:
        """Stop delivering notifications of ``type`` (None: every notification) until ``resume``; schedules
        pile up meanwhile. Returns what is paused now."""
        return await self.run(self.core.pause(type))

    async def resume(self, type: str | None = None) -> Pauses:
        """Lift the pause of ``type`` (None: every pause); what waited drains in due order, priorities first.
        Returns what is still paused."""
        return await self.run(self.core.resume(type))

    async def pauses(self) -> Pauses:
        """What delivery is paused for, since when, and how many notifications wait aside."""
        return await self.run(self.core.pauses())

    async def contact(self, recipient: str | int) -> Contact:
        """The recipient's contact data: email, phone (E.164), locale; None where not set."""
        return await self.run(self.core.contact(recipient))

    async def set_contact(
        self,
        recipient: str | int,
        *,
        email: str | UnsetType | None = UNSET,
        phone: str | UnsetType | None = UNSET,
        locale: str | UnsetType | None = UNSET,
        zone: str | UnsetType | None = UNSET,
        quiet_hours: str | UnsetType | None = UNSET,
        opt_outs: Mapping[str, Sequence[str]] | UnsetType | None = UNSET,
        opt_out: Sequence[str] = (),
        opt_in: Sequence[str] = (),
    ) -> Contact:
        """Set the contact fields given (None removes one; the others are kept) and return the contact. ``zone``
        and ``quiet_hours`` (``22:00-07:00`` in that zone) decide when non-urgent notifications reach them.
        ``opt_out=["sms:marketing"]`` keeps notifications of a type from a channel when they are sent (``*``:
        every type, or as the channel every channel); ``opt_in`` removes such entries, ``opt_outs`` replaces all."""
        return await self.run(
            self.core.set_contact(
                recipient,
                email=email,
                phone=phone,
                locale=locale,
                zone=zone,
                quiet_hours=quiet_hours,
                opt_outs=opt_outs,
                opt_out=opt_out,
                opt_in=opt_in,
            )
        )

    async def erase_recipient(self, recipient: str | int) -> Erasure:
        """Remove the recipient's contact data and inbox (a data-protection erasure); what was removed."""
        return await self.run(self.core.erase_recipient(recipient))

    async def table(
        self, table: str, *, cursor: str | None = None, limit: int = 50, partition: int | None = None
    ) -> TablePage:
        """One page of a table (upcoming, processing, retrying, failed, sent, cancelled); pass
        ``page.next_cursor`` as ``cursor`` for the next."""
        return await self.run(table_page(self.core, table, cursor=cursor, limit=limit, partition=partition))

    async def processes(self) -> builtins.list[ProcessState]:
        """Every worker and gateway from its heartbeat, each flagged ``late`` when its heartbeat is overdue."""
        return await self.run(list_processes(self.core))

    async def throughput(self, minutes: int = 60) -> builtins.list[Minute]:
        """Deliveries and lateness per minute over every worker, the last ``minutes`` (a day is kept)."""
        return await self.run(read_minutes(self.core, minutes))

    async def create_recurring(
        self,
        recipients: Iterable[object],
        title: str,
        message: str,
        *,
        cron: str | None = None,
        every: timedelta | float | None = None,
        timezone: str = "UTC",
        start: datetime | None = None,
        end: datetime | None = None,
        max_count: int | None = None,
        catch_up: str = "skip",
        type: str = "system",
        priority: str = "normal",
        data: dict[str, Any] | None = None,
        created_by: str | None = None,
        channels: Iterable[str] = (),
        idempotency_key: str | None = None,
    ) -> RecurringSchedule:
        """A recurring schedule firing on ``cron`` (5 fields, on ``timezone``'s wall clock) or ``every`` (seconds or
        a timedelta) from ``start`` until ``end`` or ``max_count`` occurrences; each occurrence is an ordinary
        notification. ``catch_up`` (``skip`` or ``last``) says what happens to times missed in an outage; a retry with
        the same ``idempotency_key`` returns the schedule the first call created."""
        return await self.run(
            self.core.create_recurring(
                recipients,
                title,
                message,
                cron=cron,
                every=every,
                timezone=timezone,
                start=start,
                end=end,
                max_count=max_count,
                catch_up=catch_up,
                type=type,
                priority=priority,
                data=data,
                created_by=created_by,
                channels=channels,
                idempotency_key=idempotency_key,
            )
        )

    async def recurring(self, schedule_id: int | str) -> RecurringSchedule:
        """A recurring schedule as it is now; RecurringNotFoundError if unknown or deleted."""
        return await self.run(self.core.recurring(schedule_id))

    async def list_recurring(
        self, *, created_by: str | None = None, limit: int = 50, cursor: int | str | None = None
    ) -> RecurringPage:
        """Recurring schedules by id (one creator's, or all); pass ``page.next_cursor`` as ``cursor`` for more."""
        return await self.run(self.core.list_recurring(created_by=created_by, limit=limit, cursor=cursor))

    async def preview_recurring(self, schedule_id: int | str, count: int = 10) -> builtins.list[datetime]:
        """The next ``count`` times a recurring schedule fires from now."""
        return await self.run(self.core.preview_recurring(schedule_id, count))

    async def pause_recurring(self, schedule_id: int | str) -> RecurringSchedule:
        """Stop a recurring schedule creating occurrences and cancel its pending one (``resume_recurring``)."""
        return await self.run(self.core.pause_recurring(schedule_id))

    async def resume_recurring(self, schedule_id: int | str) -> RecurringSchedule:
        """Restart a paused recurring schedule from its next time after now (times passed while paused do not fire)."""
        return await self.run(self.core.resume_recurring(schedule_id))

    async def delete_recurring(self, schedule_id: int | str) -> RecurringSchedule:
        """Remove a recurring schedule and cancel its pending occurrence; returns it as it was."""
        return await self.run(self.core.delete_recurring(schedule_id))

    async def reshard(
        self,
        partitions: int,
        *,
        batch: int = 100,
        max_moves: int | None = None,
        on_progress: Callable[[ReshardProgress], None] | None = None,
    ) -> ReshardProgress:
        """Move every pending notification to ``partitions`` partitions while producers and workers run (see
        ``zsched.engine.reshard``); returns when the move is over, or after about ``max_moves`` due entries
        (run it again to finish). Safe to run again after an interruption; ``on_progress`` gets each pass."""
        step = await self._drive(reshard.open_generation(self.core, partitions))
        moved = entries = 0
        while not step.done:
            budget = None if max_moves is None else max_moves - entries
            if budget is not None and budget <= 0:
                return msgspec.structs.replace(step, moved=moved, entries=entries)
            step = await self._drive(reshard.move_some(self.core, partitions, batch=batch, budget=budget))
            moved, entries = moved + step.moved, entries + step.entries
            if on_progress is not None:
                on_progress(step)
            if not step.done and not step.entries:  # what workers hold there: wait for their acks or retries
                await asyncio.sleep(RESHARD_WAIT_S)
        done = await self._drive(reshard.finish(self.core, partitions))
        return msgspec.structs.replace(done, moved=moved, entries=entries)

    async def sockets(self, recipient: object) -> Presence:
        """How many WebSockets ``recipient`` has open, in total and per gateway, as of each gateway's last
        heartbeat (a late gateway is listed but not counted)."""
        return await self.run(recipient_sockets(self.core, recipient))

    async def close(self) -> None:
        """Close the connection, and stop the embedded server if this scheduler started it."""
        await self.redis.aclose()
        if (sentinel := sentinel_of(self.redis)) is not None:
            await sentinel.aclose()
        if self.server is not None:
            self.server.stop()

    async def __aenter__(self) -> AsyncScheduler:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
