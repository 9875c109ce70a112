"""R1 and R2, recurring schedules: what a schedule costs in memory, and how late a burst of occurrences leaves.

R1: INFO used_memory delta per schedule, for 100,000 one-recipient daily schedules (``0 9 * * *``, no
``created_by``), minus the delta of the same 100,000 notifications scheduled plainly: what the schedule adds
beside its pending occurrence (an ordinary pending notification, which S5 measures). Both include the create's
operation outcome while it lives (a minute). Baseline: a bare hash holding the cron text and the payload per
schedule, and a ZSET of next times. A second row gives the same with ``created_by``, which adds the creator's index.

R2: 10,000 one-recipient schedules whose occurrences fall due at one instant, every 5 s, delivered by one real
worker process (``bench.worker_proc``), which also advances them (creates the next occurrences). Lateness = the
time the worker knew an occurrence had left - its due time. The first firing creates every recipient's inbox; the
second is the steady state (inboxes exist, each occurrence created one period ahead by the worker that fired the
one before). Beside them: the same 10,000 as plain notifications (zsched's claim burst alone), and the raw
baseline: a bare ZSET + hash drained by S4's minimal EVALSHA claim of 100 from the due instant.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis

from zsched import Scheduler
from zsched.connection import queue_step
from zsched.models import Payload, json_encoder, ms_to_datetime

from .common import MESSAGE, TITLE, Context, Figure, fill, raw_payload, recipients, used_memory
from .s2_lateness import percentile
from .s4_claim import RAW_CLAIM
from .s5_memory import _load_scripts
from .workers import WorkerPool

BYTES_TARGET_B = 400.0
LATE_TARGET_MS = 50.0
CRON = "0 9 * * *"
EVERY_S = 5
"""R2's interval: long enough for the first firing's burst and its advances to finish before the second."""
LEAD_S = 1.5
"""R2: the first firing falls this long after the schedules are created (rounded up to a whole second)."""


def run_ops(zs: Scheduler, ops: Sequence[Any]) -> list[Any]:
    """Drive many core operations at once, each step of all of them in one pipelined round trip; their results."""
    results: list[Any] = []
    pending = [(op, next(op)) for op in ops]
    while pending:
        pipe = zs.redis.pipeline(transaction=False)
        for _, steps in pending:
            for step in steps:
                queue_step(pipe, zs.scripts, step)
        replies = pipe.execute()
        at, going = 0, []
        for op, steps in pending:
            try:
                going.append((op, op.send(replies[at : at + len(steps)])))
            except StopIteration as done:
                results.append(done.value)
            at += len(steps)
        pending = going
    return results


def create_schedules(zs: Scheduler, people: Sequence[str], per_round: int = 500, **rule: Any) -> list[Any]:
    """One one-recipient recurring schedule per person, ``per_round`` creates pipelined together."""
    made: list[Any] = []
    for start in range(0, len(people), per_round):
        group = people[start : start + per_round]
        made += run_ops(zs, [zs.core.create_recurring([p], TITLE, MESSAGE, **rule) for p in group])
    return made


def schedule_bytes(ctx: Context, count: int, created_by: str | None, label: str) -> tuple[float, float]:
    """(bytes per schedule with its occurrence, bytes per plain notification) for ``count`` recipients."""
    r = ctx.redis()
    _load_scripts(r)
    people = recipients(count)
    prefix = ctx.prefix("r1-plain")
    zs = ctx.scheduler(prefix)
    before = used_memory(r)
    with ctx.bar(f"{label} {count:,} plain notifications", count) as bar:
        if created_by is None:
            fill(zs, ([p] for p in people), delay_s=7200, bar=bar)
        else:
            for start in range(0, count, 500):
                group = people[start : start + 500]
                run_ops(zs, [zs.core.schedule([p], TITLE, MESSAGE, delay=7200, created_by=created_by) for p in group])
                bar.update(len(group))
    plain = (used_memory(r) - before) / count
    zs.close()
    ctx.drop(prefix)
    prefix = ctx.prefix("r1-rec")
    zs = ctx.scheduler(prefix)
    before = used_memory(r)
    with ctx.bar(f"{label} {count:,} recurring schedules", count) as bar:
        for start in range(0, count, 5000):
            group = people[start : start + 5000]
            create_schedules(zs, group, cron=CRON, created_by=created_by)
            bar.update(len(group))
    both = (used_memory(r) - before) / count
    zs.close()
    ctx.drop(prefix)
    r.close()
    return both, plain


def raw_schedule_bytes(ctx: Context, count: int) -> float:
    """The baseline: per schedule one HSET of the cron text and the payload, one ZADD of its next time."""
    prefix = ctx.prefix("r1raw")
    r = ctx.redis()
    body = CRON.encode() + b"\n" + raw_payload()
    before = used_memory(r)
    for start in range(0, count, 1000):
        pipe = r.pipeline(transaction=False)
        for sid in range(start + 1, min(start + 1000, count) + 1):
            pipe.hset(f"{prefix}:schedules", sid, body)
            pipe.zadd(f"{prefix}:next", {str(sid): 4_000_000_000_000})
        pipe.execute()
    value = (used_memory(r) - before) / count
    r.close()
    ctx.drop(prefix)
    return value


def memory_figures(ctx: Context, label: str) -> list[Figure]:
    """R1's rows: without and with ``created_by``."""
    count = ctx.size(100_000, 1_000)
    base = raw_schedule_bytes(ctx, count)
    figures = []
    for who, n in ((None, count), ("alice", max(1, count // 5))):
        both, plain = schedule_bytes(ctx, n, who, label)
        name = f"bytes per schedule, {n:,} daily" + (", with created_by" if who else "")
        figures.append(
            Figure(
                label,
                name,
                both - plain,
                "B",
                baseline=base if who is None else None,
                higher_is_better=False,
                target=BYTES_TARGET_B if who is None else None,
                target_text=f"<= {BYTES_TARGET_B:g} B" if who is None else "",
                note=f"beside its pending occurrence: {both:.0f} B with it, {plain:.0f} B a plain notification"
                + ("; the creator's index entry included" if who else ""),
                extra={"with_occurrence_b": both, "plain_b": plain},
            )
        )
    return figures


def _wait_sent(r: redis.Redis, prefix: str, total: int, until_s: float) -> int:
    """Poll the partition's sent counter until ``total`` or the wall clock reaches ``until_s``."""
    sent = 0
    while sent < total and time.time() < until_s:
        time.sleep(0.05)
        sent = int(r.hget(f"{prefix}:{{p0}}:counters", "sent") or 0)
    return sent


def _wait_advanced(r: redis.Redis, prefix: str, due_ms: int) -> float:
    """Seconds from ``due_ms`` until every schedule was advanced past it (none left in ``recurring_due`` at or
    before it), or NaN if that takes longer than ``EVERY_S``."""
    key = f"{prefix}:{{p0}}:recurring_due"
    while time.time() < due_ms / 1000 + EVERY_S:
        head = r.zrange(key, 0, 0, withscores=True)
        if head and float(head[0][1]) > due_ms:
            return time.time() - due_ms / 1000
        time.sleep(0.01)
    return float("nan")


def burst(ctx: Context, count: int, recurring: bool) -> dict[str, Any]:
    """``count`` occurrences (or plain notifications) due at one whole second, sent by one worker process: the
    lateness of each firing (two for schedules: due and due + EVERY_S), and how many were sent once."""
    prefix = ctx.prefix("r2" if recurring else "r2-plain")
    zs = ctx.scheduler(prefix)
    people = recipients(count)
    r = ctx.redis()
    with WorkerPool(ctx.url, prefix, count=1) as pool:
        due_ms = (int(time.time() + LEAD_S + count / 10_000) + 1) * 1000  # room to create them first
        if recurring:
            made = create_schedules(zs, people, every=EVERY_S, start=ms_to_datetime(due_ms))
            first = {i for s in made for i in s.occurrence_ids}
        else:
            first = {i for c in run_ops(zs, _plain(zs, people, due_ms)) for i in c.notification_ids}
        lead_ms = due_ms - time.time() * 1000
        firings = 2 if recurring else 1
        advanced_s = _wait_advanced(r, prefix, due_ms) if recurring else float("nan")
        sent = _wait_sent(r, prefix, count * firings, due_ms / 1000 + (firings - 1) * EVERY_S + 10)
        time.sleep(0.1)
        records = pool.stop()
    r.close()
    zs.close()
    ctx.drop(prefix)
    got: dict[str, Any] = {"lead_ms": lead_ms, "sent": sent, "advanced_s": advanced_s}
    for n, name in enumerate(("first", "second")[:firings]):
        late = [v[0] for i, v in records.items() if (i in first) == (n == 0)]
        got[name] = {
            "count": len(late),
            "once": sum(1 for i, v in records.items() if (i in first) == (n == 0) and len(v) == 1),
            "p50_ms": percentile(late, 50),
            "p99_ms": percentile(late, 99),
            "max_ms": max(late, default=float("nan")),
        }
    return got


def _plain(zs: Scheduler, people: Sequence[str], due_ms: int) -> list[Any]:
    """One plain single-recipient schedule call per person, due at ``due_ms``."""
    return [zs.core.schedule([p], TITLE, MESSAGE, at=ms_to_datetime(due_ms)) for p in people]


def raw_burst(ctx: Context, count: int) -> float:
    """The baseline's p99 lateness: ``count`` entries due at one whole second in a bare ZSET + hash, drained from
    then by S4's EVALSHA claim of 100 from this process (no delivery)."""
    prefix = ctx.prefix("r2raw")
    r = ctx.redis()
    body = json_encoder.encode(Payload(TITLE, MESSAGE))
    due_ms = (int(time.time() + LEAD_S) + 1) * 1000
    for start in range(0, count, 1000):
        pipe = r.pipeline(transaction=False)
        for i in range(start + 1, min(start + 1000, count) + 1):
            pipe.zadd(f"{prefix}:due", {str(i): due_ms})
            pipe.hset(f"{prefix}:payloads", i, body)
        pipe.execute()
    claim = r.register_script(RAW_CLAIM)
    claim(keys=[f"{prefix}:due", f"{prefix}:payloads"], args=[0, 1])  # loaded before the burst
    while time.time() * 1000 < due_ms:
        time.sleep(0.0005)
    late: list[float] = []
    while len(late) < count:
        reply = claim(keys=[f"{prefix}:due", f"{prefix}:payloads"], args=[int(time.time() * 1000), 100])
        at = time.time() * 1000 - due_ms
        late += [at] * (len(reply) // 2)
    r.close()
    ctx.drop(prefix)
    return percentile(late, 99)


def burst_figures(ctx: Context, label: str) -> list[Figure]:
    """R2's rows: the schedules' first and second firing, and the same count as plain notifications."""
    count = ctx.size(10_000, 100)
    base = raw_burst(ctx, count)
    rec = burst(ctx, count, recurring=True)
    plain = burst(ctx, count, recurring=False)
    rows = [
        (f"occurrences due at one instant, p99 lateness, {count:,}: first firing", rec["first"]),
        (f"the same, second firing (steady state, every {EVERY_S} s)", rec["second"]),
        (f"plain notifications due at one instant, p99 lateness, {count:,}", plain["first"]),
    ]
    figures = []
    for n, (name, got) in enumerate(rows):
        judged = n < 2
        note = f"p50 {got['p50_ms']:.1f} ms, max {got['max_ms']:.1f} ms; {got['once']:,} of {count:,} sent once" + (
            "; by 1 worker process that also advances the schedules" if judged else "; zsched's claim burst alone"
        )
        if n == 0:
            note += f"; all {count:,} next occurrences created {rec['advanced_s']:.2f} s after the due time"
        figures.append(
            Figure(
                label,
                name,
                got["p99_ms"],
                "ms",
                baseline=base,
                higher_is_better=False,
                target=LATE_TARGET_MS if judged else None,
                target_text=f"<= {LATE_TARGET_MS:g} ms" if judged else "",
                note=note,
                extra={**got, "expected": count},
            )
        )
    return figures


def measure(ctx: Context, label: str = "R") -> list[Figure]:
    """R1 (memory per schedule) and R2 (lateness of a burst of occurrences)."""
    return [*memory_figures(ctx, label + "1"), *burst_figures(ctx, label + "2")]
