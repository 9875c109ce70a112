"""Prometheus text exposition (format 0.0.4), written by hand: no client library needed.

Totals and the pending gauge come from Redis (every process's work, so any API process answers the
same); the lateness histogram is this process's own, fed by the worker's ``observer`` callback.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from ..models import STATUSES, Notification, Stats

LATENESS_BUCKETS_S: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
TOTALS: tuple[tuple[str, str], ...] = (
    ("scheduled", "Notifications scheduled."),
    ("sent", "Notifications delivered."),
    ("failed", "Notifications that failed for good after their last attempt."),
    ("retried", "Failed delivery attempts handed back for a retry."),
    ("cancelled", "Notifications cancelled while pending."),
    ("expired", "Notifications claimed past their expiry, and so not sent."),
    ("collapsed", "Pending notifications replaced by a newer one with the same recipient and collapse key."),
    ("dead_dropped", "Dead letters dropped because a partition's dead set was over its cap (ZSCHED_MAX_DEAD)."),
    ("throttled", "Notifications over their recipient's limit for their type, which drops them; not sent."),
    ("skipped", "Notifications whose recipient opted out of every channel they name, for their type; not sent."),
)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Histogram:
    """A cumulative histogram of seconds over fixed upper bounds; safe to feed from several threads."""

    def __init__(self, bounds_s: Sequence[float] = LATENESS_BUCKETS_S) -> None:
        self.bounds_s = tuple(sorted(bounds_s))
        self.counts = [0] * len(self.bounds_s)
        self.count = 0
        self.sum_s = 0.0
        self._lock = threading.Lock()

    def observe(self, value_s: float) -> None:
        """Count one observation (negative values, from clock skew, count as zero)."""
        value_s = max(0.0, value_s)
        with self._lock:
            self.count += 1
            self.sum_s += value_s
            for i, bound in enumerate(self.bounds_s):
                if value_s <= bound:
                    self.counts[i] += 1
                    break

    def lines(self, name: str) -> list[str]:
        """The ``_bucket``, ``_sum`` and ``_count`` samples, buckets cumulative as Prometheus wants."""
        with self._lock:
            counts, count, total = list(self.counts), self.count, self.sum_s
        out, running = [], 0
        for bound, n in zip(self.bounds_s, counts, strict=True):
            running += n
            out.append(f'{name}_bucket{{le="{_number(bound)}"}} {running}')
        out += [f'{name}_bucket{{le="+Inf"}} {count}', f"{name}_sum {_number(total)}", f"{name}_count {count}"]
        return out


class Metrics:
    """What ``GET /metrics`` shows; pass ``observe`` to the worker as its ``observer``."""

    def __init__(self) -> None:
        self.lateness = Histogram()
        self.outcomes = dict.fromkeys(("sent", "retry", "failed"), 0)

    def observe(self, kind: str, notification: Notification, late_ms: float) -> None:
        """Worker callback: a delivery outcome; ``sent`` ones feed the due -> delivered histogram."""
        self.outcomes[kind] = self.outcomes.get(kind, 0) + 1
        if kind == "sent":
            self.lateness.observe(late_ms / 1000)

    def render(self, stats: Stats | None) -> str:
        """The exposition text; ``stats`` None means Redis did not answer (``zsched_redis_up 0``)."""
        lines: list[str] = []
        _family(
            lines,
            "zsched_redis_up",
            "gauge",
            "Whether Redis answered this scrape.",
            [f"zsched_redis_up {0 if stats is None else 1}"],
        )
        if stats is not None:
            for field, text in TOTALS:
                name = f"zsched_{field}_total"
                _family(
                    lines, name, "counter", f"{text} Lifetime, all processes.", [f"{name} {stats.totals.get(field, 0)}"]
                )
            _family(
                lines,
                "zsched_pending",
                "gauge",
                "Notifications waiting for their time.",
                [f"zsched_pending {stats.counts.get('pending', 0)}"],
            )
            _family(
                lines,
                "zsched_notifications",
                "gauge",
                "Notifications held, by status.",
                [f'zsched_notifications{{status="{s}"}} {stats.counts.get(s, 0)}' for s in STATUSES],
            )
            _family(
                lines,
                "zsched_oldest_overdue_seconds",
                "gauge",
                "How long the earliest pending notification has been due (0 when none is overdue).",
                [f"zsched_oldest_overdue_seconds {_number(stats.oldest_overdue_ms / 1000)}"],
            )
        name = "zsched_delivery_lateness_seconds"
        _family(
            lines,
            name,
            "histogram",
            "From due time to delivered, for deliveries made by this process's worker.",
            self.lateness.lines(name),
        )
        _family(
            lines,
            "zsched_worker_outcomes_total",
            "counter",
            "Delivery outcomes seen by this process's worker.",
            [f'zsched_worker_outcomes_total{{outcome="{k}"}} {v}' for k, v in sorted(self.outcomes.items())],
        )
        return "\n".join(lines) + "\n"


def _family(lines: list[str], name: str, kind: str, text: str, samples: Iterable[str]) -> None:
    lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *samples]


def _number(value: float) -> str:
    return repr(float(value))
