"""Partition ownership without a coordinator: each partition has an owner lease (``{pN}:owner``) that one worker
at a time holds, and every live worker enlists in ``{meta}:owners``, so each can work out its share.

A worker's share is ``partitions // live`` plus one for the first ``partitions % live`` live workers by id: the
shares add up to the partition count, and no two differ by more than one. Each round (``balance``) a worker
renews what it holds, gives up what is beyond its share, and takes free partitions up to it. No I/O of its own;
``zsched.delivery.ownership`` runs the rounds.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from .base import CoreBase
from .records import text
from .replies import DisownReply, EnlistReply, OwnReply
from .steps import Command, Op, Script

OWNER_LEASE_MS = 5_000
"""How long a partition's owner lease holds without a renewal (by default, at most the claim lease)."""


class Round(msgspec.Struct, frozen=True, kw_only=True):
    """What one round left the worker with: the partitions it owns now, and what it saw and did."""

    owned: list[int]
    live: list[str]
    share: int
    taken: list[int] = []
    released: list[int] = []
    lost: list[int] = []  # held before the round, and found taken by another (this worker was silent too long)


def share(partitions: int, live: Sequence[str], me: str) -> int:
    """How many of ``partitions`` the worker ``me`` should own among the ``live`` workers (it counts itself)."""
    workers = sorted({*live, me})
    rank = workers.index(me)
    return partitions // len(workers) + (1 if rank < partitions % len(workers) else 0)


def balance(core: CoreBase, me: str, held: Sequence[int], lease_ms: int) -> Op[Round]:
    """One round: enlist ``me``, renew the leases of ``held``, give up those beyond the share, and take free
    partitions up to it. Two round trips at most (the second only to give up or take)."""
    keys = core.keys
    parts = keys.partitions
    mine = sorted(set(held))
    others = [p for p in parts if p.index not in set(mine)]
    replies = yield [
        Script("enlist", [keys.owners], [core.now_arg(), me, lease_ms, ""]),
        *(Script("own", [parts[i].owner], [me, lease_ms]) for i in mine),
        *(Command(("GET", p.owner)) for p in others),
    ]
    live = EnlistReply.read(replies[0]).live
    renewals = [OwnReply.read(r).held for r in replies[1 : 1 + len(mine)]]
    kept = [i for i, ok in zip(mine, renewals, strict=True) if ok]
    lost = [i for i, ok in zip(mine, renewals, strict=True) if not ok]
    free = [
        p.index
        for p, holder in zip(others, replies[1 + len(mine) :], strict=True)
        if holder is None or text(holder) == me
    ]
    target = share(len(parts), live, me)
    if len(kept) > target:
        extra = kept[target:]
        replies = yield [Script("disown", [parts[i].owner], [me]) for i in extra]
        released = [i for i, r in zip(extra, replies, strict=True) if DisownReply.read(r).released]
        return Round(owned=kept[:target], live=live, share=target, released=released, lost=lost)
    want = target - len(kept)
    if not want or not free:
        return Round(owned=kept, live=live, share=target, lost=lost)
    # Workers taking at the same moment start at different free partitions (by their rank), so they rarely
    # ask for the same one; one that loses a race takes another at its next round.
    workers = sorted({*live, me})
    start = workers.index(me) * len(free) // len(workers)
    chosen = (free[start:] + free[:start])[:want]
    replies = yield [Script("own", [parts[i].owner], [me, lease_ms]) for i in chosen]
    taken = [i for i, r in zip(chosen, replies, strict=True) if OwnReply.read(r).held]
    return Round(owned=sorted(kept + taken), live=live, share=target, taken=taken, lost=lost)


def leave(core: CoreBase, me: str, held: Sequence[int], lease_ms: int) -> Op[None]:
    """Take ``me`` off the live workers and give up every lease it holds, so the others share them at once."""
    keys = core.keys
    yield [
        Script("enlist", [keys.owners], [core.now_arg(), me, lease_ms, "1"]),
        *(Script("disown", [keys.partitions[i].owner], [me]) for i in held),
    ]


def owners(core: CoreBase) -> Op[dict[int, str | None]]:
    """Partition index -> the id of the worker owning it now (None: free)."""
    parts = core.keys.partitions
    replies = yield [Command(("GET", p.owner)) for p in parts]
    return {p.index: None if r is None else text(r) for p, r in zip(parts, replies, strict=True)}
