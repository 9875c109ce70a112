"""The dead letters: notifications whose last attempt failed. List them, and requeue them for delivery.

Like ``core``, each operation is a generator of Redis steps, driven by ``Scheduler.run`` or
``AsyncScheduler.run``; nothing here does I/O of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from .core import Command, Core, Op, Script, Step
from .models import Notification, payload_decoder, state_decoder


def list_dead(core: Core, limit: int = 100) -> Op:
    """Up to ``limit`` dead letters per partition, oldest failure first, as notifications."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1; got {limit}")
    steps: list[Step] = [Command(("ZRANGE", p.failed, 0, limit - 1)) for p in core.keys.partitions]
    id_lists = yield steps
    found: list[tuple[int, bytes | str, bytes | str]] = []
    for p, raw_ids in zip(core.keys.partitions, id_lists, strict=True):
        ids = [int(i) for i in raw_ids]
        if not ids:
            continue
        states, payloads = yield [Command(("HMGET", p.state, *ids)), Command(("HMGET", p.notifications, *ids))]
        found += [(i, s, b) for i, s, b in zip(ids, states, payloads, strict=True) if s is not None and b]
    items = [Notification.from_stored(i, state_decoder.decode(s), payload_decoder.decode(b)) for i, s, b in found]
    return sorted(items, key=lambda n: (n.failed_at is None, n.failed_at, n.id))


def requeue_dead(core: Core, ids: Sequence[int] = (), *, everything: bool = False, batch: int = 1000) -> Op:
    """Make dead letters due now with fresh attempts: the given ``ids``, or all of them with ``everything``.

    Returns the requeued ids; an id that is not a dead letter is left out of the answer.
    """
    if bool(ids) == everything:
        raise ValueError("give notification ids, or everything=True, but not both")
    requeued: list[int] = []
    if ids:
        groups: dict[int, list[int]] = {}
        for i in ids:
            groups.setdefault(core.keys.for_id(i).index, []).append(i)
        steps: list[Step] = [_requeue(core, index, members, batch) for index, members in groups.items()]
        replies = yield steps
        for reply in replies:
            requeued += [int(i) for i in reply[1:]]
        return requeued
    for p in core.keys.partitions:
        while True:
            (reply,) = yield [_requeue(core, p.index, [], batch)]
            requeued += [int(i) for i in reply[1:]]
            if len(reply) - 1 < batch:
                break
    return requeued


def _requeue(core: Core, index: int, ids: Sequence[int], batch: int) -> Script:
    p = core.keys.partitions[index]
    return Script("requeue_dead", [p.due, p.failed, p.state, p.counters], [core.now_arg(), p.wakeup, batch, *ids])
