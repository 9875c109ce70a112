"""The worker: claim -> deliver -> ack or retry, as a flag plus a tick.

When its websocket channel is the inbox, the claim script itself delivers the notifications that go to the
websocket alone (appends, publishes, marks them sent): they cost one script call per batch and no Python each.

It sleeps exactly until the earliest due time the claim script reports (the server's clock decides),
and a PUBLISH on the partition's wakeup channel cuts the sleep short when something sooner is
scheduled. An idle worker issues one claim every ``idle_s``, not a busy poll.

Recurring schedules are advanced by a small loop of their own beside the claims (``advance_recurring``), not
when an occurrence is claimed or delivered: an occurrence may be cancelled, retried for an hour, or delivered
inside claim.lua with no Python seeing it, and the series must go on regardless; and the claim loop, whose
timing the benchmarks measure, is left as it was. A schedule stays in its partition's ``recurring_due`` until
``advance_recurring.lua`` moves it, so a worker that dies mid-way leaves it there for any worker's next round (at
most ``RECURRING_POLL_S`` later), and the script, idempotent by the occurrence's time, lets two workers (or a
resent call) create the next occurrence only once. The occurrence a round advances past was created a whole period
earlier, so a burst of schedules due at one instant is an ordinary claim burst; the round itself waits until the
claims have caught up (``RECURRING_LAG_S``, ``RECURRING_STARVED_S``), so creating the next occurrences never
delays sending the ones due now.

Given an ``Ownership``, it claims, reaps, purges, advances recurring schedules and wakes only for the partitions it
owns now (asked in memory before each round, so owning costs no round trip); without one, it works on every
partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import redis

from .. import tracing
from ..client import AsyncScheduler
from ..engine.keys import Partition
from ..engine.layout import follow_layout
from ..engine.leases import ChannelReport, Claimed
from ..engine.shaping import RecipientLimit, limits_arg
from ..errors import UnavailableError
from ..models import Notification
from .addresses import sharing
from .channel import ChannelsFailed, Delivery, Outcome, first_line, permanent
from .digests import Digests
from .inbox import InboxDelivery, claim_plan
from .optouts import apply_opt_outs, channels_of
from .outcomes import Observer, report, report_claimed
from .ownership import Ownership
from .templating import Renderer, deliver_rendered

log = logging.getLogger("zsched.worker")

LAYOUT_EVERY_S = 1.0
"""How often a worker looks for a new keyspace generation (``zsched reshard``), and so the longest it sleeps."""
CLAIM_MARGIN_S = 0.0001
"""Added to each wait: a claim that reaches the server a few microseconds before the due ms finds nothing and
costs a second round trip (one wake in four without this margin, one in thirty with it)."""
SPIN_S = 0.001
"""The last stretch before a due time is waited by yielding to the event loop rather than by a timer: the
loop's timers wake a few tenths of a ms late for whole-ms timeouts and 1-2 ms late for fractional ones, so
timed waits are whole ms ending at least this long before the due time, and the rest is spun."""

CLAIMS_AHEAD = 1
"""While the claims of a partition come back full and all delivered by the claim script itself (a backlog of
websocket-only notifications), each round trip carries this many more claims that deliver only such notifications
(stopping at the first they would have to claim), so the server is not idle while a reply travels and is read."""

RECURRING_POLL_S = 1.0
"""How often a worker looks for recurring schedules that came due (schedules created since its last look, or
advanced by another worker); between looks it wakes for the earliest one it knows."""
RECURRING_BATCH = 100
"""Schedules advanced per partition per round."""
RECURRING_LAG_S = 0.02
"""A round for schedules that come due starts this long after their time: the claim loop, woken exactly then,
claims their occurrences first (and says whether it has a backlog) before any Python time goes to advancing."""
RECURRING_STARVED_S = 0.25
"""While the claims have a backlog, a round waits for them to catch up, but for at most this long: under a load
that never lets up, schedules still move on (a round every quarter second)."""

PURGE_CALL_S = 0.001
"""How long one purge call should hold the server: its record count adapts to this (at most ``purge_batch``), so a
due notification that arrives during one waits at most about this long."""
PURGE_GAP_S = 0.0005
"""A backlog's next purge call is sent only when the next due time is at least one call plus this far away..."""
PURGE_STARVED_S = 0.05
"""... or when none was sent for this long (a worker busy with due work still purges, ~2 % of its time)."""
PURGE_TICK_S = 0.01
"""Purge calls go on back to back for at most this long (or until a wakeup) before the worker claims again."""


PUBSUB_CLOSE_S = 5.0
"""How long a stop waits for the wakeup connection to close, or the recurring loop to end, before going on."""


class Worker:
    """Delivers due notifications until ``should_exit`` is set (SIGTERM/SIGINT set it in ``serve``)."""

    def __init__(
        self,
        scheduler: AsyncScheduler,
        delivery: Delivery | None = None,
        *,
        batch: int = 100,
        lease_ms: int = 30_000,
        idle_s: float = 5.0,
        reap_every_s: float | None = None,
        purge_every_s: float = 60.0,
        purge_batch: int = 500,
        observer: Observer | None = None,
        ownership: Ownership | None = None,
        recipient_limits: Sequence[RecipientLimit] = (),
    ) -> None:
        self.scheduler = scheduler
        self.recipient_limits = tuple(recipient_limits)  # checked here, once, not at each claim
        limits_arg(self.recipient_limits)
        self.core = scheduler.core
        self.delivery = delivery or InboxDelivery(
            scheduler.redis, scheduler.core.keys, keep_ms=scheduler.core.retention.sent_ms, clock=scheduler.core.clock
        )
        # Websocket-only notifications are delivered by the claim script itself when the websocket is the inbox.
        self.inbox_plan = claim_plan(self.delivery)
        self.renderer = Renderer(scheduler)  # templated notifications are rendered here, never in the claim
        self._channels_of = channels_of(self.delivery)  # which channels an opt-out may take from a notification
        self.digests = Digests(scheduler, self.delivery, self.renderer, lease_ms, self._observe)
        self.batch = batch
        self.lease_ms = lease_ms
        self.idle_s = idle_s
        # Expired leases are found within half a lease (at most 5 s) of expiring.
        self.reap_every_s = reap_every_s if reap_every_s is not None else min(5.0, lease_ms / 2000)
        self.purge_every_s = purge_every_s
        self.purge_batch = purge_batch
        self.observer = observer
        self.ownership = ownership
        self._claiming = scheduler.core.keys.partitions if ownership is None else ()  # the partitions worked on
        self._channels: set[str] = set()  # the wakeup channels subscribed to
        self.on_partitions: Callable[[], None] | None = None  # called when the partitions worked on change
        self.should_exit = False
        self.delivered = 0
        self.in_flight = 0  # notifications handed to the delivery and not yet acked or failed (for the heartbeat)
        self._next_reap = 0.0
        self._next_purge = 0.0
        self._next_layout = time.monotonic() + LAYOUT_EVERY_S  # the layout was read when the scheduler started
        self._purging: dict[Partition, int] = {}  # partition -> records purged so far in this round
        self._purge_limit = min(100, purge_batch)  # records per purge call, adapted to PURGE_CALL_S
        self._purge_call_s = PURGE_CALL_S  # how long the last full purge call took
        self._purged_at = 0.0
        self._pubsub: Any = None
        # Partitions whose last claim was a full batch the claim delivered itself: the next one sends a claim ahead.
        self._streaming: set[int] = set()
        # Set while the claims are caught up (the last round's claims came back short): recurring rounds wait on it.
        self._claims_caught_up = asyncio.Event()
        self._claims_caught_up.set()

    async def run(self) -> None:
        """Loop until ``should_exit``; Redis outages are waited out with backoff, never spun on."""
        backoff_s = 0.1
        recurring = asyncio.create_task(self._recurring_loop())
        if self.ownership is not None:
            with contextlib.suppress(UnavailableError, redis.RedisError, OSError):  # the rounds go on trying
                await self.ownership.balance_once()
            self.ownership.start()
        try:
            while not self.should_exit:
                try:
                    await self._follow_layout()
                    self._follow_ownership()
                    await self._subscribe()
                    wait_s = min(await self.tick(), LAYOUT_EVERY_S)
                    backoff_s = 0.1
                except (UnavailableError, redis.ConnectionError, redis.TimeoutError) as exc:
                    log.warning("redis unavailable (%s); retrying in %.1f s", exc, backoff_s)
                    await self._close_pubsub()
                    wait_s, backoff_s = backoff_s, min(backoff_s * 2, 5.0)
                except redis.RedisError as exc:  # e.g. OOM or a busy script: the server answered, with an error
                    log.error("redis refused a worker call (%s); retrying in %.1f s", exc, backoff_s)
                    wait_s, backoff_s = backoff_s, min(backoff_s * 2, 5.0)
                if wait_s > 0:
                    await self._wait(wait_s)
        finally:
            recurring.cancel()  # mid-advance is safe: the script ran whole or not at all, and is idempotent
            await asyncio.wait([recurring], timeout=PUBSUB_CLOSE_S)
            await self._close_pubsub()
            if self.ownership is not None:
                await self.ownership.stop()
        log.info("worker stopped after delivering %d notifications", self.delivered)

    async def tick(self) -> float:
        """One round over every partition; returns how long to sleep before the next (0: go on now)."""
        now = time.monotonic()
        if now >= self._next_reap:
            self._next_reap = now + self.reap_every_s
            for p in self._claiming:
                requeued, failed = await self.scheduler.run(self.core.reap(p, lease_ms=self.lease_ms))
                if requeued or failed:
                    log.warning(
                        "partition %s: %d expired leases requeued, %d failed for good", p.index, requeued, failed
                    )
        if now >= self._next_purge:
            # A round purges each partition in calls of a few hundred records, between claims (``_purge_some``).
            self._next_purge = now + self.purge_every_s
            for p in (*self._claiming, *self._retired()):
                self._purging.setdefault(p, 0)

        wait_s = min(self.idle_s, max(0.0, self._next_reap - time.monotonic()))
        for p in self._claiming:
            if self.should_exit:
                return 0.0
            # The wait is timed from when the claim was sent: the server read its clock about one network
            # leg later, so the next claim, sent at due minus that leg, reaches the server at the due time.
            # (Timing from the answer would add the way back, and the reply's parsing, to every wake.)
            claimed_at = time.monotonic()
            ahead = CLAIMS_AHEAD if p.index in self._streaming else 0
            claimed: Claimed = await self.scheduler.run(
                self.core.claim(p, self.batch, self.lease_ms, self.inbox_plan, ahead, self.recipient_limits)
            )
            if len(claimed.sent) == self.batch * (1 + ahead):
                self._streaming.add(p.index)
            else:
                self._streaming.discard(p.index)
            if claimed.sent:  # delivered by the claim itself: nothing is left to do but say so
                self.delivered += len(claimed.sent)
                report_claimed(claimed, self.core.retry.max_attempts, self._observe, observed=self.observer is not None)
            if claimed.poisoned:
                await self._fail_poisoned(p, claimed)
            if claimed.notifications:
                await self._deliver(p, claimed, claimed_at)
            got = len(claimed.sent) + len(claimed.notifications) + len(claimed.poisoned)
            if got >= self.batch or claimed.wait_ms == 0:
                wait_s = 0.0
            elif claimed.wait_ms > 0:
                wait_s = min(wait_s, claimed.wait_ms / 1000 + CLAIM_MARGIN_S - (time.monotonic() - claimed_at))
        if wait_s > 0:
            self._claims_caught_up.set()
        else:
            self._claims_caught_up.clear()
        if self._purging and not self.should_exit:
            wait_s = await self._purge_some(max(0.0, wait_s))
        return max(0.0, wait_s)

    async def _recurring_loop(self) -> None:
        """``advance_recurring`` until ``should_exit``, sleeping until the next schedule comes due (at most
        ``RECURRING_POLL_S``); Redis outages are waited out with backoff, as the claim loop does."""
        backoff_s = 0.1
        while not self.should_exit:
            with contextlib.suppress(TimeoutError):  # claims first; see RECURRING_STARVED_S
                await asyncio.wait_for(self._claims_caught_up.wait(), RECURRING_STARVED_S)
            try:
                wait_s = await self.advance_recurring()
                if wait_s > 0:
                    wait_s += RECURRING_LAG_S
                backoff_s = 0.1
            except (UnavailableError, redis.RedisError) as exc:
                log.warning("recurring schedules: Redis failed (%s); retrying in %.1f s", exc, backoff_s)
                wait_s, backoff_s = backoff_s, min(backoff_s * 2, 5.0)
            except Exception:  # a bug must not stop every schedule silently: said, and tried again
                log.exception("recurring schedules: a round failed; retrying in %.1f s", backoff_s)
                wait_s, backoff_s = backoff_s, min(backoff_s * 2, 5.0)
            await asyncio.sleep(wait_s)  # 0 while a partition had more: go on, letting the claims run

    async def advance_recurring(self) -> float:
        """One round: advance the recurring schedules whose occurrence's time has come, in the partitions worked on
        (with an ``Ownership``, those owned; otherwise every one); returns how long until the next round (0 while a
        partition had more, at most ``RECURRING_POLL_S``)."""
        wait_s = RECURRING_POLL_S
        for p in self._claiming:
            done = await self.scheduler.run(self.core.advance_due(p, RECURRING_BATCH))
            for schedule_id in done.unreadable:
                log.error("recurring schedule %s cannot be read (corrupt?); it is not advanced", schedule_id)
            if done.advanced:
                log.debug("partition %s: advanced %d recurring schedule(s)", p.index, done.advanced)
            for schedule_id, dropped, late in done.missed:
                log.warning(
                    "recurring schedule %s was behind (an outage?): %d missed time(s) dropped%s, by its catch_up",
                    schedule_id,
                    dropped,
                    ", the last one fired late" if late else "",
                )
            if done.wait_ms >= 0:
                wait_s = min(wait_s, done.wait_ms / 1000)
        return wait_s

    async def _purge_some(self, wait_s: float) -> float:
        """Purge calls, one after another on the partitions of this round with records left past retention, while
        the next due time leaves room for one more (or purging waited ``PURGE_STARVED_S``), for at most
        ``PURGE_TICK_S`` or until a wakeup; returns the wait left, 0 while a backlog remains. A call that removes
        its full count keeps its partition in the round, so a backlog is drained between claims and due
        notifications keep their times."""
        entered = time.monotonic()
        while self._purging:
            started = time.monotonic()
            room_s = wait_s - (started - entered)
            if room_s < self._purge_call_s + PURGE_GAP_S and started - self._purged_at < PURGE_STARVED_S:
                return max(0.0, room_s)
            part = next(iter(self._purging))
            limit = self._purge_limit
            purged = await self.scheduler.run(self.core.purge(part, limit))
            self._purged_at = time.monotonic()
            total = self._purging.pop(part) + purged
            if purged >= limit:
                took_s = self._purged_at - started
                self._purge_call_s = took_s
                # Next call sized to take PURGE_CALL_S: the cost per record grows with the sets and the load.
                fit = int(limit * PURGE_CALL_S / max(took_s, 1e-4))
                self._purge_limit = min(self.purge_batch, max(10, limit // 2, min(limit * 2, fit)))
                self._purging[part] = total  # to the end of the round: partitions take turns
            elif total:
                log.info("partition %s: purged %d records past retention", part.tag, total)
            if self._purged_at - entered >= PURGE_TICK_S or await self._woken():
                return 0.0  # claim, then go on
        return max(0.0, wait_s - (time.monotonic() - entered))

    async def _woken(self) -> bool:
        """Whether a wakeup (something due sooner) arrived; does not wait."""
        if self._pubsub is None:
            return False
        try:
            return await self._pubsub.get_message(timeout=0) is not None
        except (redis.ConnectionError, redis.TimeoutError):
            await self._close_pubsub()
            return True

    async def _deliver(self, p: Partition, claimed: Claimed, claimed_at: float) -> None:
        batch = claimed.notifications
        if any(n.digest_key is not None for n in batch):  # digest members join their digests, beside the rest
            rest = [n for n in batch if n.digest_key is None]
            joining = self.digests.handle(p, [n for n in batch if n.digest_key is not None])
            others = msgspec.structs.replace(claimed, notifications=rest)
            if rest:
                carried, _ = await asyncio.gather(joining, self._deliver(p, others, claimed_at))
            else:
                carried = await joining
            self.delivered += carried
            return
        # Opt-outs first (read now, at send time): the skipped ones end here, the rest lose the channels opted out of.
        batch, contacts = await apply_opt_outs(self.scheduler, p, batch, self._channels_of)
        if not batch:
            return
        renewing = asyncio.create_task(self._renew(p, batch))
        self.in_flight += len(batch)
        try:
            with sharing(contacts):  # the renderer and the email and SMS channels read no contact again
                outcomes = await self._attempt(batch)
        finally:
            self.in_flight -= len(batch)
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
        done_ms = claimed.now_ms + (time.monotonic() - claimed_at) * 1000
        sent = [n for n, o in zip(batch, outcomes, strict=True) if o is None]
        failures = [(n, _describe(o)) for n, o in zip(batch, outcomes, strict=True) if o is not None]
        if sent:
            await self.scheduler.run(self.core.ack(p, [n.id for n in sent]))
            self.delivered += len(sent)
        delays = {  # drawn once (jitter); None: failed for good at once, since no retry can deliver it
            n.id: None if permanent(o) else self.core.retry.delay_ms(n.attempts)
            for n, o in zip(batch, outcomes, strict=True)
            if o is not None
        }
        # A notification with several channels keeps which ones were delivered: its retry sends the rest.
        reports = {
            n.id: ChannelReport([*n.done, *o.sent], {name: first_line(e) for name, e in o.errors.items()})
            for n, o in zip(batch, outcomes, strict=True)
            if isinstance(o, ChannelsFailed)
        }
        if failures:
            await self.scheduler.run(self.core.fail(p, failures, delays, reports))
        report(sent, failures, delays, done_ms, self.core.retry.max_attempts, self._observe)

    async def _fail_poisoned(self, p: Partition, claimed: Claimed) -> None:
        """Fail for good, at once, each claimed record that cannot be decoded: no retry can read it either,
        and the rest of its batch is delivered as if it were not there."""
        failures = [(bad, bad.reason) for bad in claimed.poisoned]
        await self.scheduler.run(self.core.fail(p, failures, {bad.id: None for bad in claimed.poisoned}))
        for bad in claimed.poisoned:
            log.error("notification %s failed for good: %s", bad.id, bad.reason, extra={"notification_id": bad.id})

    async def _renew(self, p: Partition, batch: Sequence[Notification]) -> None:
        """While ``batch`` is delivered, push its leases a whole lease past now every third of a lease: a slow
        batch keeps what it claimed, and two renewals in a row may fail before another worker can take it."""
        held = list(batch)
        every_s = self.lease_ms / 3000
        while held:
            await asyncio.sleep(every_s)
            try:
                lost = set(await self.scheduler.run(self.core.renew(p, held, self.lease_ms)))
            except (UnavailableError, redis.RedisError) as exc:  # the lease may still hold: try again
                log.warning(
                    "partition %s: could not renew %d leases (%s); retrying in %.1f s", p.index, len(held), exc, every_s
                )
                continue
            if lost:
                # Reaped after expiring (this worker stalled past its lease, or could not renew): another
                # worker may deliver these too. This delivery goes on; its ack still marks them sent.
                log.warning(
                    "partition %s: lost the lease of %d notification(s) still being delivered (ids %s): it expired "
                    "and was reaped, so another worker may deliver them too",
                    p.index,
                    len(lost),
                    ",".join(str(i) for i in sorted(lost)),
                )
                held = [n for n in held if n.id not in lost]

    async def _attempt(self, batch: Sequence[Notification]) -> list[Outcome]:
        spans = tracing.start_deliveries(batch)  # none unless OpenTelemetry is installed
        try:
            if any(n.template is not None for n in batch):
                outcomes = await deliver_rendered(self.delivery, self.renderer, batch)
            else:
                outcomes = await self.delivery.deliver(batch)
        except Exception as exc:  # a delivery that raises fails its whole batch, which is then retried
            outcomes = [exc] * len(batch)
        tracing.end_deliveries(spans, outcomes)
        if len(outcomes) != len(batch):
            raise RuntimeError(f"delivery returned {len(outcomes)} outcomes for {len(batch)} notifications")
        return outcomes

    def _observe(self, kind: str, n: Notification, late_ms: float) -> None:
        if self.observer is not None:
            self.observer(kind, n, late_ms)

    def partitions(self) -> list[int]:
        """The partitions this worker works on now (with an ``Ownership``, those it owns)."""
        return [p.index for p in self._claiming]

    def _retired(self) -> tuple[Partition, ...]:
        """The partitions of older generations (a reshard moved what was pending out of them) whose records this
        worker purges: those whose index falls, modulo the current count, on a partition it claims."""
        mine = {p.index for p in self._claiming}
        count = len(self.core.keys.partitions)
        return tuple(p for g in self.core.keys.generations[:-1] for p in g.partitions if p.index % count in mine)

    async def _follow_layout(self) -> None:
        """Every ``LAYOUT_EVERY_S``, look for a generation a reshard opened; when there is one, claim there: the
        old partitions are emptied by the reshard itself (what this worker holds there is acked there)."""
        now = time.monotonic()
        if now < self._next_layout:
            return
        self._next_layout = now + LAYOUT_EVERY_S
        if not await self.scheduler.run(follow_layout(self.core)):
            return
        log.info("the keyspace was resharded: claiming from its %d new partitions", len(self.core.keys.partitions))
        self._purging.clear()
        self._streaming.clear()
        self._next_reap = 0.0
        if self.ownership is None:
            self._claiming = self.core.keys.partitions
        else:
            self.ownership.forget()
            self._claiming = ()
        if self.on_partitions is not None:
            self.on_partitions()

    def _follow_ownership(self) -> None:
        """Work on the partitions owned now; a partition just taken is reaped at once (its last owner may have
        died holding leases)."""
        if self.ownership is None:
            return
        mine = self.ownership.owned()
        if mine != self._claiming:
            if set(mine) - set(self._claiming):
                self._next_reap = 0.0
            self._claiming = mine
            if self.on_partitions is not None:
                self.on_partitions()

    def _ownership_moved(self) -> bool:
        return self.ownership is not None and self.ownership.owned() != self._claiming

    async def _subscribe(self) -> None:
        channels = {p.wakeup for p in self._claiming}
        if self._pubsub is None:
            if not channels:
                return
            await self.scheduler.redis.initialize()  # a cluster client learns its slot map here
            self._pubsub = self.scheduler.redis.pubsub(ignore_subscribe_messages=True)
            await self._pubsub.subscribe(*channels)
            self._channels = channels
        elif channels != self._channels:  # ownership moved: wake only for the partitions owned now
            if not channels:
                await self._close_pubsub()
                return
            if channels - self._channels:
                await self._pubsub.subscribe(*(channels - self._channels))
            if self._channels - channels:
                await self._pubsub.unsubscribe(*(self._channels - channels))
            self._channels = channels

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        self._channels = set()
        if pubsub is not None:
            # Closing a broken connection may fail, or hang mid-read: it is dropped anyway, so neither may hold
            # up a stop.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), PUBSUB_CLOSE_S)

    async def _wait(self, seconds: float) -> None:
        """Sleep ``seconds``, to a fraction of a millisecond; return early on a wakeup or ``should_exit``."""
        deadline = time.monotonic() + seconds
        while not self.should_exit:
            remaining = math.floor((deadline - time.monotonic() - SPIN_S) * 1000) / 1000
            if remaining <= 0:
                break
            if self._ownership_moved():
                return  # a partition taken or given up: claim on the new set now
            if self._pubsub is None:
                await asyncio.sleep(min(remaining, 0.2))
                continue
            try:
                message = await self._pubsub.get_message(timeout=min(remaining, 0.2))
            except (redis.ConnectionError, redis.TimeoutError):
                await self._close_pubsub()
                continue
            if message is not None:
                while await self._pubsub.get_message(timeout=0) is not None:
                    pass  # several wakeups collapse into one claim
                return
        while time.monotonic() < deadline and not self.should_exit:
            await asyncio.sleep(0)

    def install_signal_handlers(self) -> None:
        """SIGTERM or SIGINT stops claiming: the batch in flight is finished, then ``run`` returns. A second
        one exits at once (``SystemExit``), abandoning the batch to its lease, as uvicorn does."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._handle_exit, sig)

    def _handle_exit(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if self.should_exit:
            # Raised out of the event loop: asyncio.run cancels the tasks (a stalled delivery included) and
            # exits; what was claimed is not lost, it is re-delivered when its lease expires.
            log.warning("received %s again: exiting now; the batch in flight is re-delivered after its lease", name)
            raise SystemExit(128 + sig)
        log.info("received %s: finishing the batch in flight, then stopping (again to force exit)", name)
        self.should_exit = True


def _describe(error: BaseException | None) -> str:
    if isinstance(error, ChannelsFailed):  # "webhook: webhook https://hooks.example.com answered 500; ..."
        return str(error)
    return f"{type(error).__name__}: {error}" if error is not None else ""
