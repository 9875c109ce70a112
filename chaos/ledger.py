"""What the chaos workers journaled (claims, deliveries, acks), and which fault explains each duplicate.

At-least-once allows a second delivery only of a batch a worker delivered and never acked: it was
killed, or its ack failed because its connection was cut or Redis went away. (After a Redis crash, an
ack acknowledged within the durability window may also be lost with the server.) ``explain`` holds
every duplicate to that, id by id, so a duplicate from anywhere else (a lease reaped too early, an
ack that did not stick) fails the run however few there are.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import msgspec


class Batch(msgspec.Struct, kw_only=True):
    """One claimed batch as one worker journaled it."""

    worker: int
    ids: list[int]
    claimed_s: float
    delivered: list[tuple[int, str]] = msgspec.field(default_factory=list)
    acked_s: float | None = None
    dropped_s: float | None = None


def read(workdir: Path) -> list[Batch]:
    """Every batch in the journals under ``workdir`` (``journal-<worker>.log``), worker by worker, in order."""
    batches: list[Batch] = []
    for path in sorted(workdir.glob("journal-*.log")):
        worker = int(path.stem.rsplit("-", 1)[1])
        current: Batch | None = None
        for line in path.read_text().splitlines():
            tag, _, rest = line.partition(" ")
            if tag == "D" and current is not None:
                nid, _, recipient = rest.partition(" ")
                current.delivered.append((int(nid), recipient))
                continue
            at, _, ids = rest.partition(" ")
            if tag == "C":
                current = Batch(worker=worker, ids=[int(i) for i in ids.split(",")], claimed_s=float(at))
                batches.append(current)
            elif tag == "A" and current is not None:
                current.acked_s = float(at)
            elif tag == "X" and current is not None:
                current.dropped_s = float(at)
    return batches


def deliveries(batches: Iterable[Batch]) -> list[tuple[int, str]]:
    """Every delivery (id, recipient) in the journals."""
    return [d for b in batches for d in b.delivered]


def holding(path: Path) -> bool:
    """Whether the worker journaling to ``path`` holds a batch now (its last event is a claim)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 8192))
            events = re.findall(rb"^([CAX]) ", f.read(), re.MULTILINE)
    except OSError:
        return False
    return bool(events) and events[-1] == b"C"


class Explained(msgspec.Struct, kw_only=True):
    """Deliveries beyond the first, by cause; ``problems`` names every id a cause does not cover."""

    killed: int = 0
    cut: int = 0
    lost_ack: int = 0
    bound: int = 0
    problems: list[str] = msgspec.field(default_factory=list)


def explain(
    batches: Iterable[Batch], killed: set[int], *, acks_lost_within: tuple[float, float] | None = None
) -> Explained:
    """Hold every duplicate delivery to its cause, id by id.

    A delivery is explained when its batch was never acked and its worker was ``killed`` or journaled
    the batch dropped (its ack failed), or, given ``acks_lost_within`` (start, end in monotonic s), when
    the ack returned in that window (a Redis crash may lose it). Each id may have one unexplained
    delivery (the one that stuck); ``bound`` counts the explained deliveries, a bound no duplicate count
    can pass without a problem named here.
    """
    out = Explained()
    unexplained: Counter[int] = Counter()
    where: dict[int, list[str]] = {}
    for b in batches:
        if b.acked_s is None and b.worker in killed:
            cause = "killed"
        elif b.acked_s is None and b.dropped_s is not None:
            cause = "cut"
        elif b.acked_s is not None and acks_lost_within and acks_lost_within[0] <= b.acked_s <= acks_lost_within[1]:
            cause = "lost_ack"
        else:
            cause = ""
        for nid, _ in b.delivered:
            if cause:
                setattr(out, cause, getattr(out, cause) + 1)
            else:
                unexplained[nid] += 1
            held = "never acked" if b.acked_s is None else f"acked after {b.acked_s - b.claimed_s:.3f} s"
            where.setdefault(nid, []).append(f"worker {b.worker} at {b.claimed_s:.3f} ({cause or held})")
    out.bound = out.killed + out.cut + out.lost_ack
    for nid, times in unexplained.items():
        if times > 1:
            out.problems.append(f"id {nid}: {times} deliveries no kill or cut explains: {'; '.join(where[nid])}")
    return out
