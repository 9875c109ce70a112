"""Per-minute delivery figures in Redis, added to by every worker and kept a day, so the dashboard's charts of
throughput and lateness cover every process (``GET /metrics`` is one process's histogram since it started).

A worker counts its outcomes in a ``Tally`` and adds them to the current minute's bucket (by the server's clock)
with its heartbeat; the figures of a minute are read back as counts and lateness quantiles. No I/O of its own.
"""

from __future__ import annotations

import bisect

import msgspec

from ..models import Notification
from .base import DAY_MS, CoreBase, new_op_id
from .replies import AddMinuteReply
from .steps import Command, Op, Script

LATENESS_BOUNDS_MS: tuple[int, ...] = (
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 3_600_000, DAY_MS,
)  # fmt: skip
"""Lateness buckets (due -> delivered), each counting the deliveries at most that late; the last takes the rest."""
KEEP_MS = DAY_MS
"""How long a minute's bucket is kept after it was last added to."""
MINUTE_MS = 60_000


class Tally:
    """Outcomes one process observed since it last added them to Redis: pass ``observe`` to the worker."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def observe(self, kind: str, notification: Notification, late_ms: float) -> None:
        """Worker callback: count one outcome ("sent", "retry" or "failed"), and a sent one's lateness."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if kind == "sent":
            bound = LATENESS_BOUNDS_MS[
                min(bisect.bisect_left(LATENESS_BOUNDS_MS, late_ms), len(LATENESS_BOUNDS_MS) - 1)
            ]
            self.counts[f"le:{bound}"] = self.counts.get(f"le:{bound}", 0) + 1

    def take(self) -> dict[str, int]:
        """What was counted, now zeroed."""
        counts, self.counts = self.counts, {}
        return counts

    def put_back(self, counts: dict[str, int]) -> None:
        """Count again what ``take`` gave (it could not be added), so the next add carries it."""
        for field, n in counts.items():
            self.counts[field] = self.counts.get(field, 0) + n


class Minute(msgspec.Struct, frozen=True):
    """One minute's figures over every worker: outcomes, and lateness quantiles of what was sent (the upper
    bound of the bucket each falls in; None when nothing was sent)."""

    start_ms: int
    sent: int
    retried: int
    failed: int
    p50_ms: int | None
    p99_ms: int | None


def add_minute(core: CoreBase, counts: dict[str, int], keep_ms: int = KEEP_MS) -> Op[bool]:
    """Add ``counts`` to the current minute's bucket (by the server's clock, or the pinned one); whether they
    were added (a resend of this same call adds nothing)."""
    if not counts:
        return False
    now_ms = yield from _now(core)
    keys = core.keys
    flat: list[str | int] = [x for field, n in sorted(counts.items()) for x in (field, n)]
    step = Script(
        "add_minute", [keys.minute(now_ms // MINUTE_MS), keys.meta_op(new_op_id())], [keep_ms, core.op_ttl_ms, *flat]
    )
    (reply,) = yield [step]
    return AddMinuteReply.read(reply).added


def read_minutes(core: CoreBase, minutes: int = 60) -> Op[list[Minute]]:
    """The last ``minutes`` minutes (the current one last), every one of them, empty ones as zeros."""
    now_ms = yield from _now(core)
    last = now_ms // MINUTE_MS
    starts = list(range(last - minutes + 1, last + 1))
    replies = yield [Command(("HGETALL", core.keys.minute(m))) for m in starts]
    return [_minute(m * MINUTE_MS, raw) for m, raw in zip(starts, replies, strict=True)]


def _now(core: CoreBase) -> Op[int]:
    if core.clock is not None:
        return core.clock()
    ((seconds, micros),) = yield [Command(("TIME",))]
    return int(seconds) * 1000 + int(micros) // 1000


def _minute(start_ms: int, raw: dict[bytes | str, bytes | str]) -> Minute:
    counts = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
    late = sorted((int(field[3:]), n) for field, n in counts.items() if field.startswith("le:"))
    total = sum(n for _, n in late)
    return Minute(
        start_ms,
        counts.get("sent", 0),
        counts.get("retry", 0),
        counts.get("failed", 0),
        _quantile(late, total, 0.5),
        _quantile(late, total, 0.99),
    )


def _quantile(late: list[tuple[int, int]], total: int, q: float) -> int | None:
    """The upper bound of the bucket holding the q-quantile of ``total`` deliveries."""
    if not total:
        return None
    running = 0
    for bound, n in late:
        running += n
        if running >= q * total:
            return bound
    return late[-1][0]
