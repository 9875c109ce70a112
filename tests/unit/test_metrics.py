"""Prometheus exposition: totals and gauges from Stats, a cumulative lateness histogram, Redis down."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from zsched.models import Notification, Stats
from zsched.web.metrics import Histogram, Metrics

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _stats() -> Stats:
    return Stats(
        counts={"pending": 4, "processing": 1, "sent": 7, "cancelled": 2, "failed": 1},
        totals={"scheduled": 15, "sent": 7, "failed": 1, "retried": 3, "cancelled": 2, "claimed": 11},
        next_due_at=NOW,
        oldest_overdue_ms=1500,
        server_time=NOW,
    )


def _n() -> Notification:
    return Notification(
        id=1, recipient="a", title="t", message="m", scheduled_at=NOW, scheduled_status="sent", created_at=NOW
    )


def test_histogram_buckets_are_cumulative() -> None:
    h = Histogram((0.1, 1.0, 10.0))
    for value in (0.05, 0.1, 0.5, 5.0, 50.0, -1.0):
        h.observe(value)
    assert h.lines("x") == [
        'x_bucket{le="0.1"} 3',
        'x_bucket{le="1.0"} 4',
        'x_bucket{le="10.0"} 5',
        'x_bucket{le="+Inf"} 6',
        "x_sum 55.65",
        "x_count 6",
    ]


def test_render_totals_gauges_and_lateness() -> None:
    m = Metrics()
    m.observe("sent", _n(), 20.0)
    m.observe("sent", _n(), 2000.0)
    m.observe("retry", _n(), 5.0)
    text = m.render(_stats())
    for line in (
        "zsched_redis_up 1",
        "zsched_scheduled_total 15",
        "zsched_sent_total 7",
        "zsched_failed_total 1",
        "zsched_retried_total 3",
        "zsched_cancelled_total 2",
        "zsched_pending 4",
        'zsched_notifications{status="processing"} 1',
        "zsched_oldest_overdue_seconds 1.5",
        "zsched_delivery_lateness_seconds_count 2",
        'zsched_delivery_lateness_seconds_bucket{le="0.025"} 1',
        'zsched_delivery_lateness_seconds_bucket{le="2.5"} 2',
        'zsched_worker_outcomes_total{outcome="retry"} 1',
        "# TYPE zsched_sent_total counter",
        "# TYPE zsched_pending gauge",
        "# TYPE zsched_delivery_lateness_seconds histogram",
    ):
        assert line in text.splitlines(), line
    assert text.endswith("\n")
    sample = re.compile(r'^[a-z_]+(\{[a-z]+="[^"]*"\})? -?[0-9.e+-]+$')
    assert all(line.startswith("# ") or sample.match(line) for line in text.splitlines()), text


def test_render_without_redis_keeps_local_series() -> None:
    text = Metrics().render(None)
    assert "zsched_redis_up 0" in text and "zsched_sent_total" not in text
    assert "zsched_delivery_lateness_seconds_count 0" in text
