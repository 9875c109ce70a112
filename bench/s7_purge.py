"""S7 purge: 1,000,000 terminal records already past retention, cleared by one real worker process while
S2-style probes are due; the same probes again once nothing is left to purge, and one worker's delivery rate,
all in the same run on the same server.

The records are written by raw pipelines, cloned from one record zsched's own scripts made (schedule, claim,
ack), so they have exactly the layout purge reads: state, payload, a terminal set entry, the recipient and
creator index entries.
"""

from __future__ import annotations

import json
import time

import redis
from redis.typing import EncodableT, FieldT

from zsched.engine import Core, Retention
from zsched.engine.keys import Keyspace, Partition

from .common import Context, Figure, recipients
from .s2_lateness import _schedule_spread, calls_needed, percentile
from .s4_claim import drain, make_due
from .workers import WorkerPool

TERMINALS = (("sent", 18), ("cancelled", 1), ("failed", 1))
"""Which terminal set the cloned records go to, in shares of 20: mostly sent, some cancelled and failed."""
PROBE_RATE = 1000
PROBE_S = 4.0
DRAIN_TARGET_S = 300.0
RATE_TARGET_X = 10.0
RUNS = ("without", "with", "after")
"""The probe windows: a worker not purging, one purging the backlog, the same worker once it is gone."""


def _sample(ctx: Context, prefix: str) -> tuple[str, bytes, dict[str, object]]:
    """One notification scheduled, claimed and acked by zsched's scripts: its creator, payload and state."""
    zs = ctx.scheduler(prefix)
    core = Core(Keyspace(prefix), retention=Retention(1, 1, 1))
    created_by = "bench-purge"
    zs.run(core.schedule(["100000"], "Purged soon", "A record for the purge benchmark", delay=0, created_by=created_by))
    p = core.keys.partitions[0]
    claimed = zs.run(core.claim(p, 1, 60_000))
    (n,) = claimed.notifications
    zs.run(core.ack(p, [n.id]))
    payload = zs.redis.hget(p.notifications, n.id)
    state = zs.redis.hget(p.state, n.id)
    zs.close()
    assert isinstance(payload, bytes) and isinstance(state, bytes)
    return created_by, payload, json.loads(state)


def fill_expired(ctx: Context, prefix: str, count: int, *, per_round: int = 2000, label: str = "S7") -> int:
    """``count`` terminal records past their retention in partition 0 of ``prefix``, written by raw pipelines;
    returns the server time (ms) they expired by."""
    created_by, payload, state = _sample(ctx, prefix)
    p: Partition = Keyspace(prefix).partitions[0]
    r = ctx.redis()
    now_ms = _server_ms(r)
    first = int(r.incrby(p.sequence, count)) - count + 1  # ids zsched will never hand out again
    people = recipients(count)
    shares = [name for name, share in TERMINALS for _ in range(share)]
    with ctx.bar(f"{label} setup: {count:,} expired records", count) as bar:
        for start in range(0, count, per_round):
            pipe = r.pipeline(transaction=False)
            payloads: dict[FieldT, EncodableT] = {}
            states: dict[FieldT, EncodableT] = {}
            terminal: dict[str, dict[str, int]] = {name: {} for name, _ in TERMINALS}
            by_recipient: dict[str, int] = {}
            by_creator: dict[str, int] = {}
            for i in range(start, min(start + per_round, count)):
                nid = str(first + i)
                person = people[i]
                payloads[nid] = payload
                states[nid] = json.dumps({**state, "recipient": person}, separators=(",", ":"))
                terminal[shares[i % len(shares)]][nid] = now_ms - 1 - i % 1000
                by_recipient[f"{person} {int(nid):016d}"] = 0
                by_creator[f"{created_by} {int(nid):016d}"] = 0
            pipe.hset(p.notifications, mapping=payloads)
            pipe.hset(p.state, mapping=states)
            for name, members in terminal.items():
                if members:
                    pipe.zadd(getattr(p, name), members)
            pipe.zadd(p.by_recipient, by_recipient)
            pipe.zadd(p.by_creator, by_creator)
            pipe.execute()
            bar.update(min(per_round, count - start))
    r.close()
    return now_ms


def _server_ms(r: redis.Redis) -> int:
    seconds, micros = r.time()
    return int(seconds) * 1000 + int(micros) // 1000


def terminal_left(r: redis.Redis, p: Partition) -> int:
    """How many records past their retention the terminal sets of ``p`` still hold."""
    now_ms = _server_ms(r)
    pipe = r.pipeline(transaction=False)
    for name, _ in TERMINALS:
        pipe.zcount(getattr(p, name), "-inf", now_ms)
    return sum(int(n) for n in pipe.execute())


def _probe(ctx: Context, prefix: str, rate: int, seconds: float) -> tuple[list[int], float]:
    """Schedule S2's even spread on ``prefix``, starting half a second from now; (ids, first due time in s)."""
    count = max(10, int(rate * seconds))
    first_ms = int(time.time() * 1000) + 500 + calls_needed(rate, count) // 4
    ids = _schedule_spread(ctx, prefix, rate, count, first_ms)
    return ids, first_ms / 1000


def _wait_sent(r: redis.Redis, p: Partition, total: int, deadline: float) -> None:
    while int(r.hget(p.counters, "sent") or 0) < total and time.time() < deadline:
        time.sleep(0.05)


def _lateness(records: dict[int, list[float]], ids: list[int]) -> dict[str, float]:
    late = [records[i][0] for i in ids if i in records]
    missing = sum(1 for i in ids if i not in records)
    duplicated = sum(1 for i in ids if len(records.get(i, ())) > 1)
    return {
        "p50_ms": percentile(late, 50),
        "p99_ms": percentile(late, 99),
        "max_ms": max(late, default=float("nan")),
        "count": len(ids),
        "missing": missing,
        "duplicated": duplicated,
    }


def measure_purge(
    ctx: Context,
    count: int,
    probe_rate: int = PROBE_RATE,
    probe_s: float = PROBE_S,
    give_up_s: float = 2 * DRAIN_TARGET_S,
) -> dict[str, float]:
    """Fill ``count`` expired records; run the probes with a worker that does not purge (the baseline: the same
    records present); then start a purging worker, run the same probes while it drains them and time the drain,
    and run them once more after. Returns the figures as a dict."""
    prefix = ctx.prefix("s7")
    p = Keyspace(prefix).partitions[0]
    fill_expired(ctx, prefix, count)
    r = ctx.redis()
    left = terminal_left(r, p)
    with WorkerPool(ctx.url, prefix, count=1, purge_every_s=3600.0) as pool:
        before, first_s = _probe(ctx, prefix, probe_rate, probe_s)
        _wait_sent(r, p, len(before), first_s + probe_s + 10)
        time.sleep(0.1)
        unpurged = pool.stop()
    sent_before = len(before)
    with WorkerPool(ctx.url, prefix, count=1, purge_every_s=60.0) as pool:  # the default: one round a minute
        started = time.perf_counter()
        during, first_s = _probe(ctx, prefix, probe_rate, probe_s)
        with ctx.bar(f"S7 purge of {left:,} with probes at {probe_rate:,}/s", left) as bar:
            gone = 0
            deadline = started + give_up_s
            while gone < left and time.perf_counter() < deadline:
                time.sleep(0.02)
                now_gone = left - terminal_left(r, p)
                bar.update(now_gone - gone)
                gone = now_gone
        drain_s = time.perf_counter() - started
        drained_at = time.time()
        _wait_sent(r, p, sent_before + len(during), first_s + probe_s + 10)
        after, _ = _probe(ctx, prefix, probe_rate, probe_s)
        _wait_sent(r, p, sent_before + len(during) + len(after), time.time() + probe_s + 10)
        time.sleep(0.1)
        records = pool.stop()
    r.close()
    ctx.drop(prefix)
    # Probes due after the purge ended are not "during" it: count how many were.
    overlap = min(probe_s, max(0.0, drained_at - first_s)) / probe_s
    figures = {"with": _lateness(records, during), "without": _lateness(unpurged, before)}
    figures["after"] = _lateness(records, after)
    return {
        "records": left,
        "drain_s": drain_s,
        "purge_per_s": gone / drain_s,
        "probes_during_share": overlap,
        **{f"{run}_{k}": v for run, got in figures.items() for k, v in got.items()},
    }


def delivery_rate(ctx: Context, count: int) -> float:
    """One worker process's claim + deliver + ack rate on already-due notifications (S4's method)."""
    prefix = ctx.prefix("s7-deliver")
    make_due(ctx, prefix, count, "S7")
    rate, _ = drain(ctx, prefix, count, 1, "S7")
    ctx.drop(prefix)
    return rate


def figures(got: dict[str, float], deliver_per_s: float) -> list[Figure]:
    """The table rows for one purge measurement beside the same run's delivery rate."""
    n = int(got["records"])
    share = f"{got['probes_during_share'] * 100:.0f} % of the probes due before it ended"
    probes = f"{int(got['with_count']):,} due at {PROBE_RATE:,}/s"
    return [
        Figure(
            "S7",
            f"purge {n:,} expired records, 1 worker",
            got["drain_s"],
            "s",
            higher_is_better=False,
            target=DRAIN_TARGET_S,
            target_text=f"<= {DRAIN_TARGET_S:g} s",
            note=f"{got['purge_per_s']:,.0f} records/s; probes at {PROBE_RATE:,}/s meanwhile",
            extra=got,
        ),
        Figure(
            "S7",
            "purge rate vs 1 worker's delivery rate",
            got["purge_per_s"],
            "rec/s",
            baseline=deliver_per_s,
            target=RATE_TARGET_X,
            target_on_ratio=True,
            target_text=f">= {RATE_TARGET_X:g} x delivery",
            note=f"baseline: claim + deliver + ack, 1 worker, this run ({deliver_per_s:,.0f} notif/s)",
        ),
        Figure(
            "S7",
            "lateness p99 during purge",
            got["with_p99_ms"],
            "ms",
            baseline=got["without_p99_ms"],
            higher_is_better=False,
            target=got["without_p99_ms"] + 1.0,
            target_text="<= without + 1 ms",
            note=(
                f"baseline: the same probes and records, a worker not purging: p99 {got['without_p99_ms']:.2f} ms; "
                f"p50 {got['with_p50_ms']:.2f} vs {got['without_p50_ms']:.2f} ms; after the purge p99 "
                f"{got['after_p99_ms']:.2f} ms; {probes}, {share}; "
                f"{int(sum(got[f'{run}_missing'] for run in RUNS))} missing, "
                f"{int(sum(got[f'{run}_duplicated'] for run in RUNS))} duplicated"
            ),
        ),
    ]


def measure(ctx: Context) -> list[Figure]:
    """1,000,000 expired records (scaled), and one worker's delivery rate for the ratio."""
    got = measure_purge(ctx, ctx.size(1_000_000, 1_000), probe_s=max(1.0, PROBE_S * min(1.0, ctx.scale)))
    return figures(got, delivery_rate(ctx, ctx.size(50_000, 1_000)))
