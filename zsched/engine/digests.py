"""Digest operations, the worker's side: a claimed member joins its recipient's digest, or flushes it; a sent
digest's record is dropped, a failed one's flush released for the retry.

Each is a generator of Redis steps (see ``steps``); nothing here does I/O of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from ..models import Notification
from . import records
from .base import CoreBase
from .keys import Partition
from .replies import JoinDigestReply
from .steps import Command, Op, Script, Step

DIGEST_KEEP_MS = 24 * 3600 * 1000
"""How long a digest's record outlives its close and each flush: a failed flush's retries find their digest's
members by it (beyond that, a member left alone opens a digest of its own); a record whose members were all
cancelled goes then."""


class Joined(msgspec.Struct):
    """What joining a claimed member did: ``held`` (it waits in digest ``digest``, due at ``close_ms``), ``flush``
    (``members``, this one among them, are now this worker's to send as one, under the lease; the digest closed,
    or closes, at ``close_ms``), ``busy`` (another worker's flush carries it) or ``gone`` (no longer this claim's:
    leave it alone)."""

    code: str
    digest: int = 0
    close_ms: int = 0
    members: list[Notification] = msgspec.field(default_factory=list)


class DigestOps(CoreBase):
    """Operations a worker runs on a digest member it claimed."""

    def join_digest(self, partition: Partition, n: Notification, lease_ms: int) -> Op[Joined]:
        """Join claimed ``n`` (it has a ``digest_key``) to its recipient's open digest for that key, or open one;
        when that digest is due (closed, or full with ``n``), take every member waiting in it under a lease of
        ``lease_ms`` and return them. A member whose record cannot be read is left out of the flush."""
        (joined,) = yield from self.join_digests(partition, [n], lease_ms)
        return joined

    def join_digests(self, partition: Partition, batch: Sequence[Notification], lease_ms: int) -> Op[list[Joined]]:
        """``join_digest`` for each of ``batch``, in one round trip: the calls run in order, so a member finds the
        digest an earlier one opened, and one flush takes the members an earlier call held."""
        p = partition
        steps: list[Step] = []
        for n in batch:
            assert n.digest_key is not None, "only a notification with a digest_key joins a digest"
            steps.append(
                Script(
                    "join_digest",
                    [
                        p.state,
                        p.processing,
                        p.notifications,
                        *p.due_for_each,
                        p.digest_open(n.recipient, n.digest_key),
                        p.digest(""),
                        self.op_key(p),
                    ],
                    [
                        self.now_arg(),
                        n.id,
                        n.digest_window_ms or self.digest_window_ms,
                        n.digest_max or self.digest_max,
                        lease_ms,
                        DIGEST_KEEP_MS,
                        self.op_ttl_ms,
                        p.wakeup,
                    ],
                )
            )
        out: list[Joined] = []
        for raw in (yield steps) if steps else []:
            reply = JoinDigestReply.read(raw)
            members = []
            for member_id, state, payload in reply.members:
                try:
                    members.append(records.notification(member_id, state, payload))
                except records.UNDECODABLE:
                    continue  # under the lease still: reaped, then claimed again and failed there with its reason
            out.append(Joined(reply.code, reply.digest, reply.close_ms, members))
        return out

    def digest_done(self, partition: Partition, digest: int, sent: bool) -> Op[None]:
        """After a flush: drop the digest's record when it was ``sent``; otherwise release the flush (its ``taken``
        stays), so the retries of its members, due together, flush it again with the same members."""
        key = partition.digest(str(digest))
        yield [Command(("DEL", key) if sent else ("HDEL", key, "holder", "until"))]
