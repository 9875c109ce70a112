"""Opt-outs at send time: before a batch goes to its channels, the worker reads its recipients' contact data (one
round trip, which the renderer and the email and SMS channels then share instead of reading it again), takes out
the channels each recipient opted out of for the notification's type, and ends ``skipped`` (with the reason) each
notification left with no channel. One with channels left goes through them, and its record names the channels
it skipped (``opted_out``). Read at send time, so an opt-out set after scheduling applies to what is pending.

A worker whose delivery is not a ``Router`` has one channel, the websocket's inbox by default: opt-outs of the
websocket (or of every channel) apply to what it sends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from ..engine import optouts
from ..engine.contacts import lookup
from ..engine.keys import Partition
from ..models import Contact, Notification
from .channel import Delivery
from .router import Router

log = logging.getLogger("zsched.worker")

ChannelsOf = Callable[[Notification], Sequence[str]]
"""The channels a notification goes through: those it names, or its delivery's default."""


def channels_of(delivery: Delivery) -> ChannelsOf:
    """How ``delivery`` picks each notification's channels (a router: those named, or its default)."""
    if isinstance(delivery, Router):
        default = delivery.default
        return lambda n: n.channels or default
    return lambda n: ("websocket",)


async def apply_opt_outs(
    scheduler: Any, partition: Partition, batch: Sequence[Notification], channels: ChannelsOf
) -> tuple[list[Notification], dict[str, Contact]]:
    """The notifications of ``batch`` still to send, each through the channels its recipient did not opt out of,
    and the recipients' contacts (for ``addresses.sharing``); those opted out of every channel end skipped here,
    in one script call (none when nobody in the batch has an opt-out that applies, or had at an earlier attempt)."""
    core = scheduler.core
    contacts: dict[str, Contact] = await scheduler.run(lookup(core.keys, [n.recipient for n in batch]))
    ready: list[Notification] = []
    opted: list[tuple[Notification, list[str], str | None]] = []
    for n in batch:
        table = contacts[n.recipient].opt_outs
        names = channels(n) if table else ()
        out = [name for name in names if optouts.blocked(table, name, n.type)]
        if not out:
            ready.append(n)
            if n.opted_out:  # an earlier attempt skipped some, and the recipient opted in since: none now
                opted.append((n, [], None))
            continue
        left = [name for name in names if name not in out]
        if left:
            ready.append(msgspec.structs.replace(n, channels=left))
            opted.append((n, out, None))
        else:
            opted.append((n, out, optouts.reason(n.recipient, out, n.type)))
    if opted:
        await scheduler.run(core.skip(partition, opted))
        for n, _, why in opted:
            if why is not None:
                log.info("notification %s to %s skipped: %s", n.id, n.recipient, why, extra={"notification_id": n.id})
    return ready, contacts
