"""Small versions of the ``make chaos`` fault families: real worker processes, real servers, real faults.

Each asserts what the full run asserts (nothing lost, every duplicate explained by a kill or cut in
the workers' journals, none past de-duplication by id, the fault really landed), at sizes that keep
the whole file to a few tens of seconds.
"""

from __future__ import annotations

from chaos import cuts, outage, redis_crash, worker_crash
from chaos.harness import Figures


def _assert_nothing_lost(figures: Figures, may_lose: int = 0) -> None:
    assert figures.problems == [], figures.problems
    assert figures.ok and figures.lost <= may_lose and figures.dedup_duplicates == 0
    assert figures.delivered == figures.scheduled - figures.lost > 0
    assert figures.faults > 0, "no fault was injected"
    assert figures.duplicate_bound is not None and figures.duplicated <= figures.duplicate_bound


def test_workers_killed_mid_batch_lose_nothing(redis_url: str, prefix: str) -> None:
    plan = worker_crash.Plan(count=1500, workers=2, kill_every_ms=(150, 300), min_kills=4, lease_ms=1000, timeout_s=90)
    figures = worker_crash.run(plan, url=redis_url, prefix=prefix)
    _assert_nothing_lost(figures)
    assert figures.notes["leases reaped"] > 0, "no kill landed on a worker holding a batch"


def test_redis_sigkill_and_restart_keeps_acknowledged_schedules() -> None:
    plan = redis_crash.Plan(count=1000, workers=1, due_within_s=(2.0, 5.0), crash_after_s=2.5, down_s=0.5, timeout_s=90)
    figures = redis_crash.run(plan)
    _assert_nothing_lost(figures, may_lose=figures.notes["acknowledged in the last 2 s and lost"])
    assert figures.notes["pending at crash"] > 0
    assert figures.notes["worker reconnect waits"] >= 1, "the worker never noticed the crash"


def test_outage_is_waited_out_and_then_delivered_once() -> None:
    figures = outage.run(outage.Plan(before=200, during=500, workers=1, outage_s=3.0, timeout_s=90))
    _assert_nothing_lost(figures)  # includes the backoff: 0.1, 0.2, 0.4, 0.8, 1.6 s logged and waited
    assert figures.duplicated == 0
    assert figures.notes["worker CPU s during outage"] < 1.5


def test_cut_connections_lose_nothing(redis_url: str, prefix: str) -> None:
    figures = cuts.run(
        cuts.Plan(count=1000, workers=2, cut_every_ms=(100, 300), lease_ms=1000, timeout_s=90, min_cuts=3),
        url=redis_url,
        prefix=prefix,
    )
    _assert_nothing_lost(figures)
    assert figures.notes["created"] == 1000
    assert figures.notes["cuts mid-command"] > 0
