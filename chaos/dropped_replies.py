"""Dropped replies: every zsched process talks to Redis through a proxy that loses replies of commands that ran.

A real ``zsched serve`` (the HTTP API and a worker) and a ``zsched worker`` connect through ``LossyProxy``,
which drops 1% of replies (the connection is cut after the server answered) and delays another 1% past
the processes' socket timeout. Meanwhile a service token schedules over HTTP, 100 recipients a call, and
everything is delivered to the recipients' inboxes. redis-py sends a command again when its reply is lost;
each state-changing script must answer that resend with its first run's outcome, so: created equals requested,
each notification is delivered (appended to its inbox) once, and nothing is stranded in processing or due.
The positive control: replies of zsched's scripts really were dropped, and delayed, while this ran.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import msgspec
import redis

from zsched.web.auth import SCOPE_SCHEDULE_ANY, TokenStore

from .harness import Figures, free_port, run_family, scheduler, statuses, until
from .lossy_proxy import LossyProxy
from .services import Zsched

SCRIPTS = ("schedule", "claim")
"""The state-changing scripts of scheduling and delivering, each of which must meet both faults. These
notifications go to the websocket alone, so the worker's claim appends, publishes and marks them sent in one
call: publish_inbox and ack run only for other channels (``test_dropped_replies`` covers them)."""


class Plan(msgspec.Struct, kw_only=True, frozen=True):
    """Sizes and rates of one dropped-replies run."""

    count: int = 20_000
    per_call: int = 100
    callers: int = 4  # HTTP calls in flight at once
    drop: float = 0.01
    delay: float = 0.01
    socket_timeout_s: float = 1.0  # the zsched processes'; a delayed reply comes later than this
    hold_s: float = 1.5
    lease_ms: int = 10_000
    due_in_s: float = 5.0  # each call's notifications are due this long after it is sent
    timeout_s: float = 240.0
    seed: int = 6


def run(plan: Plan | None = None, *, url: str | None = None, prefix: str | None = None) -> Figures:
    """Schedule ``plan.count`` notifications over HTTP and deliver them, with every process behind the proxy."""
    return run_family("dropped", plan or Plan(), url, prefix, _run)


def _run(plan: Plan, url: str, prefix: str, workdir: Path) -> Figures:
    figures = Figures(
        family="dropped replies", tried=f"proxy drops {plan.drop:.0%} of replies, delays {plan.delay:.0%} past timeout"
    )
    started = time.monotonic()
    proxy = LossyProxy(url, drop=plan.drop, delay=plan.delay, hold_s=plan.hold_s, seed=plan.seed).start()
    direct = scheduler(url, prefix)  # the referee reads around the proxy
    port = free_port()
    env = {
        "ZSCHED_REDIS_URL": proxy.url,
        "ZSCHED_PREFIX": prefix,
        "ZSCHED_SOCKET_TIMEOUT_S": str(plan.socket_timeout_s),
        "ZSCHED_LEASE_MS": str(plan.lease_ms),
        "ZSCHED_IDLE_S": "1",
        "ZSCHED_RATE_PER_S": "10000",  # the service token's limit, raised: the run schedules as fast as it can
        "ZSCHED_RATE_BURST": "10000",
    }
    processes: list[Zsched] = []
    try:
        token, _ = TokenStore(prefix).create(direct.redis, "chaos-service", scopes=(SCOPE_SCHEDULE_ANY,))
        processes = [
            Zsched(["serve", "--port", str(port)], env, workdir / "serve.log"),
            Zsched(["worker"], env, workdir / "worker.log"),
        ]
        base = f"http://127.0.0.1:{port}"
        up = until(lambda: _ready(base), 30, every_s=0.2)
        figures.check(up, f"zsched serve did not get ready: {processes[0].tail()}")
        proxy.losing.set()
        calls = [[f"d{k}-{i}" for i in range(plan.per_call)] for k in range(plan.count // plan.per_call)]
        with (
            httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=60) as http,
            ThreadPoolExecutor(plan.callers) as callers,
        ):
            answers = list(callers.map(lambda people: _schedule(http, people, plan.due_in_s), calls))
        ids = [nid for got, _ in answers for nid in got]
        refused = [why for _, why in answers if why]
        figures.check(not refused, f"{len(refused)} schedule calls failed: {refused[:3]}")
        requested = len(calls) * plan.per_call
        figures.check(len(set(ids)) == len(ids) == requested, f"{len(set(ids))} distinct ids for {requested}")

        def settled() -> bool:
            counts = direct.stats().counts
            return counts["pending"] == 0 and counts["processing"] == 0

        figures.check(until(settled, plan.timeout_s, every_s=0.5), f"not settled after {plan.timeout_s:.0f} s")
        proxy.losing.clear()
        alive = [p.alive() for p in processes]
        figures.check(all(alive), f"zsched processes alive at the end: {alive}; {processes[0].tail()}")
        exits = [p.stop() for p in processes]
        figures.check(exits == [0, 0], f"exit statuses {exits}")
        stats = direct.stats()
        created = stats.totals.get("scheduled", 0)
        figures.check(created == requested, f"{created} notifications created for {requested} requested")
        left = {status: stats.counts[status] for status in ("pending", "processing")}
        figures.check(left == {"pending": 0, "processing": 0}, f"stranded: {left}")
        reaped = stats.totals.get("reaped", 0)
        figures.check(reaped == 0, f"{reaped} leases reaped: a claim's batch was stranded until its lease expired")
        delivered = _inboxes(direct.redis, direct.core.keys.partitions[0].inbox, calls)
        now = statuses(direct, ids)
        figures.scheduled = requested
        figures.delivered = sum(1 for nid in ids if delivered[nid] > 0)
        figures.duplicated = sum(times - 1 for times in delivered.values())
        figures.duplicate_bound = 0
        figures.lost = sum(1 for nid in ids if delivered[nid] == 0 or now.get(nid, ("missing", 0))[0] != "sent")
        figures.failed = sum(1 for status, _ in now.values() if status == "failed")
        figures.check(figures.lost == 0, f"{figures.lost} notifications not in their inbox or not marked sent")
        figures.check(figures.duplicated == 0, f"{figures.duplicated} inbox entries beyond the first")
        unknown = delivered.keys() - set(ids)
        figures.check(not unknown, f"{len(unknown)} inbox entries for ids no call returned")
        figures.faults = proxy.faults("dropped") + proxy.faults("delayed")
        # the positive control: both faults met the scripts whose resends this row is about
        for kind in ("dropped", "delayed"):
            missed = [name for name in SCRIPTS if proxy.lost[f"{kind} lua {name}"] == 0]
            figures.check(not missed, f"no reply of {', '.join(missed)} was {kind}: the row did not test them")
        figures.notes = {
            "commands through proxy": proxy.commands,
            "replies lost by command": dict(sorted(proxy.lost.items())),
            "created": created,
            "leases reaped": reaped,
            "worker reconnect waits": sum(
                1 for p in processes for r in p.records() if "redis unavailable" in str(r.get("message"))
            ),
        }
    finally:
        for p in processes:
            p.stop()
        proxy.stop()
        direct.close()
    return figures.finish(started)


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _schedule(http: httpx.Client, people: list[str], due_in_s: float) -> tuple[list[int], str]:
    """One schedule call: the ids it created, or why it failed (no retry: a retry without a key could double)."""
    at = (datetime.now(UTC) + timedelta(seconds=due_in_s)).isoformat().replace("+00:00", "Z")
    body = {"recipients": people, "title": "Chaos", "message": "still here?", "scheduled_at": at}
    try:
        answer = http.post("/api/notifications/schedule/", json=body)
    except httpx.HTTPError as exc:
        return [], f"{type(exc).__name__}: {exc}"
    if answer.status_code != 201:
        return [], f"{answer.status_code} {answer.text[:200]}"
    return list(answer.json()["notification_ids"]), ""


def _inboxes(r: redis.Redis, inbox: Callable[[str], str], calls: list[list[str]]) -> Counter[int]:
    """How often each notification id was appended to its recipient's inbox stream (read around the proxy)."""
    seen: Counter[int] = Counter()
    people = [person for call in calls for person in call]
    for start in range(0, len(people), 500):
        pipe = r.pipeline(transaction=False)
        for person in people[start : start + 500]:
            pipe.xrange(inbox(person))
        for entries in pipe.execute():
            for _, fields in entries:
                seen[int(json.loads(fields[b"n"])["id"])] += 1
    return seen
