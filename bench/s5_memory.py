"""S5 memory: INFO used_memory delta per notification, pending and after it was sent.

Pending: bytes per pending notification beside the payload's own bytes and a bare ZSET + hash baseline with no
state and no recipient index. A single-recipient call is compared to a baseline that stores one payload copy per
notification; a 1,000-recipient call to one that stores the payload once per call (zsched need not copy a call's
payload per recipient, so a per-copy baseline would flatter it).

Sent: what a delivered notification leaves behind, drained by a real worker process (as S4 drains) through the
default websocket channel: the record kept for audit until retention purges it, and the entry appended to the
recipient's inbox stream. Both are reported without a target: they tell how many notifications a day fit.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis

from zsched.engine.scripts import sources

from .common import Context, Figure, chunks, fill, raw_fill, raw_payload, recipients, used_memory
from .workers import WorkerPool

SINGLE_TARGET_B, MANY_TARGET_B, MANY_STRETCH_B = 350.0, 120.0, 60.0
PER_INBOX = 10
"""Sent notifications per recipient in the sent measurement: an inbox holds many entries, and one with a single
entry would mostly measure the stream's own overhead."""


def zsched_bytes(ctx: Context, prefix: str, count: int, per_call: int, label: str, start: int = 0) -> float:
    """Schedule ``count`` pending notifications under ``prefix`` (``per_call`` recipients a call); bytes each."""
    zs = ctx.scheduler(prefix)
    before = used_memory(zs.redis)
    what = "single-recipient" if per_call == 1 else f"{per_call:,}-recipient"
    with ctx.bar(f"{label} fill {count:,} ({what})", count) as bar:
        fill(
            zs,
            chunks(recipients(count, start), per_call),
            delay_s=7200,
            ops_per_round=500 if per_call == 1 else 5,
            bar=bar,
        )
    after = used_memory(zs.redis)
    zs.close()
    return (after - before) / count


def raw_fill_per_call(r: redis.Redis, prefix: str, count: int, per_call: int, due_ms: int) -> None:
    """The raw baseline of a many-recipient call: per recipient a ZADD id -> due, per call ONE HSET of the
    payload, nothing else (a call's ids are consecutive, so an id names its call: (id - 1) // per_call)."""
    body = raw_payload()
    calls_per_round = max(1, 1000 // per_call)
    for first in range(0, count, per_call * calls_per_round):
        pipe = r.pipeline(transaction=False)
        for start in range(first, min(first + per_call * calls_per_round, count), per_call):
            ids = range(start + 1, min(start + per_call, count) + 1)
            pipe.zadd(f"{prefix}:due", dict.fromkeys(map(str, ids), due_ms))
            pipe.hset(f"{prefix}:payloads", start // per_call, body)
        pipe.execute()


def raw_bytes(ctx: Context, count: int, per_call: int = 1) -> float:
    """Bytes per entry of the bare baseline: ZADD id -> due, and HSET of the payload once per notification
    (``per_call`` 1) or once per ``per_call``-recipient call; nothing else."""
    prefix = ctx.prefix("s5raw")
    r = ctx.redis()
    before = used_memory(r)
    if per_call == 1:
        raw_fill(r, prefix, recipients(count), 4_000_000_000_000)
    else:
        raw_fill_per_call(r, prefix, count, per_call, 4_000_000_000_000)
    after = used_memory(r)
    r.close()
    ctx.drop(prefix)
    return (after - before) / count


def floor_bytes(ctx: Context, count: int) -> float:
    """Bytes per entry of the raw baseline plus the least index that lists one recipient's notifications: one
    member ``"<recipient> <id, 16 digits>"`` of a score-0 ZSET per notification (``by_recipient``'s form; a
    member per notification because a recipient may hold any number). What no layout keeping list-by-recipient
    can go below, before any state, creator index or retry outcome."""
    prefix = ctx.prefix("s5floor")
    r = ctx.redis()
    people = recipients(count)
    before = used_memory(r)
    raw_fill(r, prefix, people, 4_000_000_000_000)
    for start in range(0, count, 1000):
        members = {f"{person} {start + i + 1:016d}": 0 for i, person in enumerate(people[start : start + 1000])}
        r.zadd(f"{prefix}:by_recipient", members)
    after = used_memory(r)
    r.close()
    ctx.drop(prefix)
    return (after - before) / count


def payload_bytes() -> int:
    """What the caller's data takes as zsched stores it: the payload JSON plus the recipient id."""
    return len(raw_payload()) + len(recipients(1)[0])


def figure(label: str, count: int, per_call: int, value: float, base: float | None) -> Figure:
    """The S5 row for one pending measurement (``base`` from ``raw_bytes`` with the same ``per_call``)."""
    single = per_call == 1
    target = SINGLE_TARGET_B if single else MANY_TARGET_B
    name = f"bytes per pending, {count:,} {'single' if single else '1,000-recipient calls'}"
    note = f"payload itself {payload_bytes()} B"
    if not single:
        note += f"; raw stores the payload once per call; stretch <= {MANY_STRETCH_B:g} B"
    return Figure(
        label,
        name,
        value,
        "B",
        baseline=base,
        higher_is_better=False,
        target=target,
        target_text=f"<= {target:g} B",
        note=note,
    )


def _load_scripts(r: redis.Redis) -> None:
    """SCRIPT LOAD every zsched script, so the worker loading them later is not counted as stored data."""
    for source in sources().values():
        r.script_load(source)


def _wait_sent(ctx: Context, prefix: str, count: int, label: str) -> int:
    """Start one worker on ``prefix`` and wait until ``count`` notifications are sent (or it stalls)."""
    zs = ctx.scheduler(prefix)
    with WorkerPool(ctx.url, prefix, count=1), ctx.bar(f"{label} drain, 1 worker", count) as bar:
        sent, deadline = 0, time.monotonic() + max(10.0, count / 2000)
        while sent < count and time.monotonic() < deadline:
            time.sleep(0.05)
            now_sent = zs.stats().counts["sent"]
            bar.update(now_sent - sent)
            sent = now_sent
    zs.close()
    return sent


def _drop_inboxes(ctx: Context, prefix: str, people: Sequence[str]) -> None:
    """UNLINK the inbox stream of each of ``people``, named by zsched's own keyspace."""
    zs = ctx.scheduler(prefix)
    keys = zs.core.keys
    for group in chunks(people, 1000):
        zs.redis.unlink(*(keys.for_recipient(who).inbox(who) for who in group))
    zs.close()


def sent_figures(ctx: Context, count: int, label: str) -> list[Figure]:
    """Bytes per sent notification kept for audit, and per inbox entry, from ``count`` single-recipient
    notifications due now (``PER_INBOX`` to each recipient) drained by one real worker process.

    The audit figure is the used_memory delta from before scheduling to after the drain, the inboxes dropped;
    the inbox figure is what dropping them gave back. Both include the claim, ack and inbox calls' operation
    keys while they live (a minute: a few bytes a notification at a batch of 100)."""
    prefix = ctx.prefix("s5sent")
    people = recipients(max(1, count // PER_INBOX))
    r = ctx.redis()
    _load_scripts(r)
    before = used_memory(r)
    zs = ctx.scheduler(prefix)
    with ctx.bar(f"{label} setup: {count:,} due", count) as bar:
        fill(zs, ([people[i % len(people)]] for i in range(count)), delay_s=0, ops_per_round=500, bar=bar)
    zs.close()
    sent = _wait_sent(ctx, prefix, count, label)
    with_inboxes = used_memory(r)
    _drop_inboxes(ctx, prefix, people)
    records = used_memory(r)
    r.close()
    ctx.drop(prefix)
    done = max(1, sent)
    return [
        Figure(
            label,
            f"bytes per sent (audit record), {count:,} single",
            (records - before) / done,
            "B",
            higher_is_better=False,
            note=f"{sent:,} sent by 1 worker; kept until retention purges it",
        ),
        Figure(
            label,
            f"bytes per inbox entry, {count:,} single",
            (with_inboxes - records) / done,
            "B",
            higher_is_better=False,
            note=f"{sent:,} entries in {len(people):,} inbox streams ({PER_INBOX} each)",
        ),
    ]


def measure(ctx: Context, label: str = "S5") -> list[Figure]:
    """Bytes per pending notification at 100,000 pending, single-recipient and 1,000-recipient calls, each
    beside its raw baseline; then bytes per sent notification and per inbox entry at 100,000 sent.

    The 1,000,000-pending figure is taken by S6, which needs a million pending anyway.
    """
    count = ctx.size(100_000, 2_000)
    figures = []
    for per_call in (1, 1000):
        base = raw_bytes(ctx, count, per_call)
        prefix = ctx.prefix(f"s5-{per_call}")
        value = zsched_bytes(ctx, prefix, count, per_call, label)
        ctx.drop(prefix)
        figures.append(figure(label, count, per_call, value, base))
    floor = floor_bytes(ctx, count)
    figures.append(
        Figure(
            label,
            f"floor with list-by-recipient, {count:,} single",
            floor,
            "B",
            higher_is_better=False,
            note=f"raw + one by_recipient member each; the {SINGLE_TARGET_B:g} B target is "
            f"{'below' if floor > SINGLE_TARGET_B else 'above'} it",
        )
    )
    figures += sent_figures(ctx, count, label)
    return figures
