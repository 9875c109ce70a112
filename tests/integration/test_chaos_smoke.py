"""Small versions of the ``make chaos`` fault families: real worker processes, real servers, real faults.

Each asserts what the full run asserts (nothing lost, every duplicate explained by a kill or cut in
the workers' journals, none past de-duplication by id, the fault really landed), at sizes that keep
the whole file to a few tens of seconds.
"""

from __future__ import annotations

from chaos import cuts, dropped_replies, outage, poison, redis_crash, slow_channel, worker_crash
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


def test_a_webhook_slower_than_the_lease_is_posted_once() -> None:
    # one batch of 40 held by one worker for three 1.2 s answers while the other, idle, reaps every second
    figures = slow_channel.run(slow_channel.Plan(count=40, timeout_s=60))
    assert figures.problems == [], figures.problems
    assert (figures.delivered, figures.duplicated, figures.lost) == (40, 0, 0)
    assert figures.notes["leases reaped"] == 0
    assert figures.faults == figures.notes["batches"] > 0, "every batch was held longer than the lease"


def test_corrupt_records_fail_alone_and_the_rest_go_out_first_time(redis_url: str, prefix: str) -> None:
    figures = poison.run(poison.Plan(count=500, bad_each=5, timeout_s=60), url=redis_url, prefix=prefix)
    assert figures.problems == [], figures.problems
    assert (figures.scheduled, figures.delivered, figures.failed, figures.lost) == (500, 480, 20, 0)
    assert figures.notes["good sent on attempt 1"] == 480 and figures.notes["worker exits"] == 0
    assert figures.notes["corrupt failed with the reason"] == 20


def test_lost_replies_create_and_deliver_each_notification_once() -> None:
    # 5% each way here (1% in make chaos), so each script meets both faults in a short run
    plan = dropped_replies.Plan(
        count=2000, drop=0.05, delay=0.05, socket_timeout_s=0.5, hold_s=0.75, due_in_s=3, timeout_s=60
    )
    figures = dropped_replies.run(plan)
    assert figures.problems == [], figures.problems
    assert (figures.scheduled, figures.delivered, figures.duplicated, figures.lost) == (2000, 2000, 0, 0)
    assert figures.notes["created"] == 2000 and figures.notes["leases reaped"] == 0
    lost = figures.notes["replies lost by command"]
    for script in dropped_replies.SCRIPTS:
        assert lost.get(f"dropped lua {script}", 0) > 0 and lost.get(f"delayed lua {script}", 0) > 0, lost
