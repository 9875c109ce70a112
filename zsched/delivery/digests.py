"""Digests, the worker's side: a claimed member joins its digest (``join_digest.lua`` holds it there, pending), and a
digest that comes due is sent as one notification per channel, a count plus the items, then acked or retried whole.

The notification sent carries the digest's id (its first member's), the recipient, "3 new notifications" as its
title, the members' titles as its message, and ``data``: ``digest_key``, ``count`` and ``items`` (each member's id,
title, message, type, priority, data and due time). Its channels are those its members name (the default channels
when none names any). Every member is acked when it is delivered; when it fails, every member is retried after the
same delay (or failed for good), and their retries, due together, flush the digest again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import redis

from ..client import AsyncScheduler
from ..engine.keys import Partition
from ..engine.leases import ChannelReport
from ..errors import UnavailableError
from ..models import PRIORITIES, Notification, ms_to_datetime
from .addresses import sharing
from .channel import ChannelsFailed, Delivery, Outcome, first_line, permanent
from .optouts import apply_opt_outs, channels_of
from .outcomes import Observer, report
from .templating import Renderer

log = logging.getLogger("zsched.worker")


def carrier(digest: int, members: Sequence[Notification]) -> Notification:
    """The one notification that carries a digest's ``members`` (rendered, in the order they joined)."""
    first = members[0]
    count = len(members)
    channels: list[str] = []
    for n in members:
        channels += [c for c in n.channels if c not in channels]
    done = [c for c in first.done if all(c in n.done for n in members)]  # delivered by every earlier attempt
    items = [
        {
            "id": n.id,
            "title": n.title,
            "message": n.message,
            "type": n.type,
            "priority": n.priority,
            "data": n.data,
            "scheduled_at": n.scheduled_at.isoformat().replace("+00:00", "Z"),
        }
        for n in members
    ]
    return Notification(
        id=digest,
        recipient=first.recipient,
        title=f"{count} new notification{'' if count == 1 else 's'}",
        message="; ".join(n.title for n in members),
        type=first.type,
        priority=max((n.priority for n in members), key=PRIORITIES.index),
        data={"digest_key": first.digest_key, "count": count, "items": items},
        channels=channels,
        scheduled_at=max(n.scheduled_at for n in members),
        scheduled_status="processing",
        attempts=max(n.attempts for n in members),
        created_at=min(n.created_at for n in members),
        done=done,
        digest_key=first.digest_key,
        digest=digest,
    )


class Digests:
    """Joins a worker's claimed digest members to their digests and sends each digest that comes due."""

    def __init__(
        self,
        scheduler: AsyncScheduler,
        delivery: Delivery,
        renderer: Renderer,
        lease_ms: int,
        observe: Callable[[str, Notification, float], None],
    ) -> None:
        self.scheduler = scheduler
        self.core = scheduler.core
        self.delivery = delivery
        self.renderer = renderer
        self.lease_ms = lease_ms
        self.observe: Observer = observe
        self.channels_of = channels_of(delivery)

    async def handle(self, p: Partition, members: Sequence[Notification]) -> int:
        """Join the claimed members (in one round trip, in order: a later one may find the digest an earlier one
        opened), then send each digest that came due; returns how many members were sent."""
        flushes = []
        joins = await self.scheduler.run(self.core.join_digests(p, members, self.lease_ms))
        for n, joined in zip(members, joins, strict=True):
            if joined.code == "held":
                log.debug("notification %s waits in digest %s until %s", n.id, joined.digest, joined.close_ms)
            elif joined.code == "flush" and joined.members:
                flushes.append(self.send(p, joined.digest, joined.members, joined.close_ms))
        return sum(await asyncio.gather(*flushes))

    async def send(self, p: Partition, digest: int, members: list[Notification], close_ms: int) -> int:
        """Deliver one digest as one notification, then ack every member, or retry (or fail) them together;
        returns how many were sent. Its leases are renewed while it is delivered. Logs and the observer see each
        member due when the digest was (its close, or when it filled, or its retry's time): the wait in the digest
        is the point, not lateness."""
        renewing = asyncio.create_task(self._renew(p, members))
        try:
            # Opt-outs apply to each member, read now: one opted out of every channel ends skipped, not carried.
            left, contacts = await apply_opt_outs(self.scheduler, p, members, self.channels_of)
            with sharing(contacts):
                ready, failures = await self._render(left)
                outcome: Outcome = None
                if ready:
                    try:
                        (outcome,) = await self.delivery.deliver([carrier(digest, ready)])
                    except Exception as exc:  # a delivery that raises fails the digest, which is then retried
                        outcome = exc
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
        done_ms = self.core.rough_now_ms()  # this process's clock: only for the lateness logs and observers see
        delays: dict[int, int | None] = {n.id: None for n, _ in failures}  # a template gone: no retry renders it
        reports: dict[int, ChannelReport] = {}
        sent: list[Notification] = []
        if outcome is None:
            sent = ready
        else:
            delay = None if permanent(outcome) else self.core.retry.delay_ms(max(n.attempts for n in ready))
            text = _describe(outcome)
            for n in ready:
                failures.append((n, text))
                delays[n.id] = delay
                if isinstance(outcome, ChannelsFailed):
                    done = carrier(digest, ready).done
                    reports[n.id] = ChannelReport(
                        [*done, *outcome.sent], {name: first_line(e) for name, e in outcome.errors.items()}
                    )
        if sent:
            await self.scheduler.run(self.core.ack(p, [n.id for n in sent]))
        if failures:
            await self.scheduler.run(self.core.fail(p, failures, delays, reports))
        await self.scheduler.run(self.core.digest_done(p, digest, sent=outcome is None))
        due_ms = min(close_ms, done_ms)

        def as_due(n: Notification) -> Notification:
            return msgspec.structs.replace(n, scheduled_at=max(n.scheduled_at, ms_to_datetime(due_ms)))

        report(
            [as_due(n) for n in sent],
            [(as_due(n), why) for n, why in failures],
            delays,
            done_ms,
            self.core.retry.max_attempts,
            self.observe,
        )
        if sent:
            log.info("digest %s sent to %s: %d notification(s)", digest, members[0].recipient, len(sent))
        return len(sent)

    async def _render(self, members: list[Notification]) -> tuple[list[Notification], list[tuple[Notification, str]]]:
        """The members ready to send (templated ones rendered), and those whose template cannot render, with why."""
        if all(n.template is None for n in members):
            return members, []
        ready: list[Notification] = []
        failures: list[tuple[Notification, str]] = []
        for n, got in zip(members, await self.renderer.render(members), strict=True):
            if isinstance(got, Notification):
                ready.append(got)
            else:
                failures.append((n, _describe(got)))
        return ready, failures

    async def _renew(self, p: Partition, held: Sequence[Notification]) -> None:
        """Push the members' leases a whole lease past now every third of a lease while the digest is delivered."""
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            with contextlib.suppress(UnavailableError, redis.RedisError):  # the lease may still hold: try again
                await self.scheduler.run(self.core.renew(p, held, self.lease_ms))


def _describe(error: Any) -> str:
    if isinstance(error, ChannelsFailed):
        return str(error)
    return f"{type(error).__name__}: {error}"
