"""Who is connected where: each gateway records, per recipient, how many of its WebSockets are open, so any process
can say how many sockets one recipient has open and on which gateways.

A gateway writes its counts at each heartbeat (``set_sockets.lua``): the recipients whose count changed since the
last write, so a beat costs O(changes), not O(sockets); one hash per gateway process, holding only the recipients
with a socket open there, expiring with its heartbeat. A count is as fresh as the gateway's last heartbeat.
No I/O of its own.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from . import validation
from .base import CoreBase
from .processes import KEEP_MS, list_processes
from .replies import SetSocketsReply
from .steps import Command, Op, Script, Step

CHUNK = 1000
"""Recipients one ``set_sockets.lua`` call writes at most (a gateway with more sends several in one round trip)."""


def write_sockets(
    core: CoreBase, process_id: str, counts: Mapping[str, int], *, full: bool, keep_ms: int = KEEP_MS
) -> Op[bool]:
    """Write a gateway's sockets per recipient: every recipient with one open (``full``), or the changes (0: none
    left). False when changes came for a hash that is gone (it expired, or was never written): write in full."""
    key = core.keys.sockets(process_id)
    items = sorted(counts.items())
    chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)] or [[]]
    steps: list[Step] = [
        Script("set_sockets", [key], [keep_ms, "1" if full and n == 0 else "", *(v for pair in chunk for v in pair)])
        for n, chunk in enumerate(chunks)
    ]
    replies = yield steps
    return all(SetSocketsReply.read(reply).written for reply in replies)


class SocketReporter:
    """One gateway's writer: remembers what it last wrote, so each write sends only what changed since."""

    def __init__(self, process_id: str, keep_ms: int = KEEP_MS) -> None:
        self.process_id = process_id
        self.keep_ms = keep_ms
        self._written: dict[str, int] | None = None  # None: nothing written yet, so the first write is full

    def changes(self, current: Mapping[str, int]) -> dict[str, int]:
        """What differs from the last write: each changed count, and 0 for each recipient with none left."""
        before = self._written or {}
        changed = {who: count for who, count in current.items() if before.get(who) != count}
        changed.update({who: 0 for who in before if who not in current})
        return changed

    def report(self, core: CoreBase, current: Mapping[str, int]) -> Op[None]:
        """Write ``current`` (recipient -> sockets open here): the changes, or everything when the hash is gone.
        A write that fails leaves the last one remembered, so the next sends its changes again (counts are
        absolute: writing one twice is harmless)."""
        now = {who: count for who, count in current.items() if count > 0}
        written = False
        if self._written is not None:
            written = yield from write_sockets(
                core, self.process_id, self.changes(now), full=False, keep_ms=self.keep_ms
            )
        if not written:
            yield from write_sockets(core, self.process_id, now, full=True, keep_ms=self.keep_ms)
        self._written = now


class Connection(msgspec.Struct, frozen=True, kw_only=True):
    """The sockets one recipient has open on one gateway process, as of its last heartbeat (epoch ms)."""

    process_id: str
    host: str
    pid: int
    sockets: int
    last_beat_ms: int
    late: bool


class Presence(msgspec.Struct, frozen=True, kw_only=True):
    """One recipient's open WebSockets: the total on gateways whose heartbeat is on time, and each gateway's."""

    recipient: str
    sockets: int
    connections: list[Connection]


def recipient_sockets(core: CoreBase, recipient: object) -> Op[Presence]:
    """How many WebSockets ``recipient`` has open, per gateway that beat within ``KEEP_MS``; the total leaves out
    gateways whose heartbeat is late (they likely died with their sockets). O(processes)."""
    recipient = validation.recipient(recipient)
    states = [s for s in (yield from list_processes(core)) if s.info.sockets is not None]
    if not states:
        return Presence(recipient=recipient, sockets=0, connections=[])
    counts = yield [Command(("HGET", core.keys.sockets(s.info.id), recipient)) for s in states]
    connections = [
        Connection(
            process_id=s.info.id,
            host=s.info.host,
            pid=s.info.pid,
            sockets=int(count),
            last_beat_ms=s.last_beat_ms,
            late=s.late,
        )
        for s, count in zip(states, counts, strict=True)
        if count and int(count) > 0
    ]
    total = sum(c.sockets for c in connections if not c.late)
    return Presence(recipient=recipient, sockets=total, connections=connections)
