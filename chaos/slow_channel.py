"""Slow channel: every webhook takes longer to answer than a batch's lease lasts, and still goes out once.

Two real ``zsched worker`` processes deliver through the webhook channel to a local receiver that answers
each POST after ``answer_s``; a batch of 40 at 16 POSTs at a time takes three answers, well past the lease.
The workers renew what they are delivering (``renew.lua``), so nothing is reaped and nothing is POSTed twice.
The positive control: each batch really was held longer than the lease (from its first POST to its ack).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import msgspec

from .harness import Figures, run_family, schedule_many, scheduler, settled, statuses, until
from .services import SlowHook, Zsched, logged_at

_SENT = re.compile(r"^sent \d+ notifications \(ids ([\d,]+);")


class Plan(msgspec.Struct, kw_only=True, frozen=True):
    """Sizes and times of one slow-channel run."""

    count: int = 480
    workers: int = 2
    answer_s: float = 1.2
    lease_ms: int = 2000
    batch: int = 40
    concurrency: int = 16
    timeout_s: float = 120.0


def run(plan: Plan | None = None, *, url: str | None = None, prefix: str | None = None) -> Figures:
    """Deliver ``plan.count`` notifications through a webhook slower, per batch, than the lease."""
    return run_family("slow", plan or Plan(), url, prefix, _run)


def _run(plan: Plan, url: str, prefix: str, workdir: Path) -> Figures:
    figures = Figures(
        family="slow channel",
        tried=f"webhooks answer in {plan.answer_s} s; {plan.lease_ms / 1000:g} s lease, batch {plan.batch}",
    )
    started = time.monotonic()
    zs = scheduler(url, prefix)
    hook = SlowHook(plan.answer_s).start()
    env = {
        "ZSCHED_REDIS_URL": url,
        "ZSCHED_PREFIX": prefix,
        "ZSCHED_LEASE_MS": str(plan.lease_ms),
        "ZSCHED_BATCH": str(plan.batch),
        "ZSCHED_CHANNELS": "webhook",
        "ZSCHED_WEBHOOK_URL": hook.url,
        "ZSCHED_WEBHOOK_SECRET": "chaos",
        "ZSCHED_WEBHOOK_CONCURRENCY": str(plan.concurrency),
        "ZSCHED_IDLE_S": "1",
    }
    workers: list[Zsched] = []
    try:
        # due in 2 s: both workers are up by then, and each takes its batches under the same lease
        ids = schedule_many(zs, plan.count, delay_s=2.0, tag="slow")
        workers = [Zsched(["worker"], env, workdir / f"worker-{n}.log") for n in range(plan.workers)]
        figures.check(until(settled(zs), plan.timeout_s, every_s=0.25), f"not settled after {plan.timeout_s:.0f} s")
        exits = [w.stop() for w in workers]
        figures.check(exits == [0] * plan.workers, f"worker exit statuses {exits}: {workers[0].tail()}")
        posts = hook.counts()
        now = statuses(zs, ids)
        figures.scheduled = len(ids)
        figures.delivered = sum(1 for nid in ids if posts[nid] > 0)
        figures.duplicated = sum(times - 1 for times in posts.values())
        figures.duplicate_bound = 0
        figures.lost = sum(1 for nid in ids if posts[nid] == 0 or now.get(nid, ("missing", 0))[0] != "sent")
        figures.failed = sum(1 for status, _ in now.values() if status == "failed")
        figures.check(figures.lost == 0, f"{figures.lost} notifications not POSTed or not marked sent")
        figures.check(figures.duplicated == 0, f"{figures.duplicated} duplicate POSTs")
        unknown = posts.keys() - set(ids)
        figures.check(not unknown, f"{len(unknown)} POSTs for ids never scheduled")
        reaped = zs.stats().totals.get("reaped", 0)
        figures.check(reaped == 0, f"{reaped} leases reaped from workers that were still delivering")
        # the positive control: a batch that beat its lease would pass without renewal too
        first = hook.first_post()
        held_s: list[float] = []
        for record in (r for w in workers for r in w.records()):
            sent = _SENT.match(str(record.get("message", "")))
            if sent:
                batch = [int(i) for i in sent.group(1).split(",")]
                held_s.append(logged_at(record) - min(first.get(nid, float("inf")) for nid in batch))
        longer = sum(1 for s in held_s if s > plan.lease_ms / 1000)
        figures.faults = longer
        figures.check(held_s != [], "no batch was logged as sent")
        figures.check(
            longer == len(held_s),
            f"only {longer} of {len(held_s)} batches were held longer than the {plan.lease_ms} ms lease",
        )
        lost_leases = sum(1 for w in workers for r in w.records() if "lost the lease" in str(r.get("message")))
        figures.check(lost_leases == 0, f"{lost_leases} lease-lost warnings")
        figures.notes = {
            "batches": len(held_s),
            "batch held s (min, max)": (round(min(held_s, default=0), 2), round(max(held_s, default=0), 2)),
            "POSTs": sum(posts.values()),
            "leases reaped": reaped,
            "webhook concurrency": plan.concurrency,
        }
    finally:
        for w in workers:
            w.stop()
        hook.stop()
        zs.close()
    return figures.finish(started)
