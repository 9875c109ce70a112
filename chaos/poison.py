"""Poison records: corrupt records sit in the due set among good ones; each fails alone, and the rest go out.

Records are corrupted in Redis after scheduling, as a bad migration, a hand edit or another writer would:
a state whose payload is gone, a payload that is JSON of the wrong shape, a payload that is not JSON, and
a state that is not JSON. Every good notification must be delivered once, on its first attempt; every bad
one must end ``failed`` with the reason; no worker may exit. The positive control: each bad record really was
due and corrupt when the workers started, and a worker logged failing it.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import msgspec
import redis

from .harness import Figures, Pool, run_family, schedule_many, scheduler, settled, statuses, tally, until

CORRUPTIONS: dict[str, tuple[str, str | None]] = {  # kind -> (which hash, the value written there; None: deleted)
    "no payload": ("notifications", None),
    "payload of the wrong shape": ("notifications", '{"title": 5, "message": ["not", "text"]}'),
    "payload not JSON": ("notifications", '{"title": "cut off'),
    "state not JSON": ("state", "{not json"),
}
REASON = "cannot decode the stored record: "


class Plan(msgspec.Struct, kw_only=True, frozen=True):
    """Sizes of one poison run."""

    count: int = 10_000
    bad_each: int = 100  # corrupt records of each kind in CORRUPTIONS, among ``count``
    workers: int = 2
    batch: int = 100
    lease_ms: int = 2000
    timeout_s: float = 120.0
    seed: int = 6


def run(plan: Plan | None = None, *, url: str | None = None, prefix: str | None = None) -> Figures:
    """Schedule ``plan.count`` notifications, corrupt some, and deliver them all with a pool of workers."""
    return run_family("poison", plan or Plan(), url, prefix, _run)


def corrupt(r: redis.Redis, key: str, nid: int, value: str | None) -> bool:
    """Write ``value`` (None: delete) as notification ``nid``'s field of hash ``key``; whether it now reads so."""
    if value is None:
        r.hdel(key, str(nid))
    else:
        r.hset(key, str(nid), value)
    raw = r.hget(key, str(nid))
    return (raw.decode() if isinstance(raw, bytes) else None) == value


def _run(plan: Plan, url: str, prefix: str, workdir: Path) -> Figures:
    rng = random.Random(plan.seed)
    bad_count = plan.bad_each * len(CORRUPTIONS)
    figures = Figures(family="poison records", tried=f"{bad_count} corrupt records ({len(CORRUPTIONS)} kinds) in due")
    started = time.monotonic()
    zs = scheduler(url, prefix)
    p = zs.core.keys.partitions[0]
    pool = Pool(url, prefix, workdir, lease_ms=plan.lease_ms, batch=plan.batch)
    try:
        # One recipient a call, so that each has a record of its own to corrupt (a many-recipient call keeps
        # one payload for all, and its recipients' records are written only when they are claimed).
        ids = schedule_many(zs, plan.count, tag="p", chunk=1)
        picked = rng.sample(ids, bad_count)  # spread over the whole due set: most batches hold one
        kinds = list(CORRUPTIONS)
        bad = {nid: kinds[i % len(kinds)] for i, nid in enumerate(picked)}
        hashes = {"notifications": p.notifications, "state": p.state}
        landed = sum(
            corrupt(zs.redis, hashes[CORRUPTIONS[kind][0]], nid, CORRUPTIONS[kind][1]) for nid, kind in bad.items()
        )
        figures.check(0 < landed == bad_count, f"{landed} of {bad_count} records corrupted: the row tests nothing")
        good = [nid for nid in ids if nid not in bad]
        due = {int(m) for m in zs.redis.zrange(p.due, 0, -1)}
        figures.check(bad.keys() <= due and len(due) == plan.count, "the corrupt records are not all in due")
        pool.start(plan.workers)
        figures.check(until(settled(zs), plan.timeout_s, every_s=0.25), f"not settled after {plan.timeout_s:.0f} s")
        exited = [process.returncode for _, process in pool.live if process.poll() is not None]
        figures.check(not exited and pool.spawned == plan.workers, f"workers exited: statuses {exited}")
        pool.stop()
        pool.explain(figures)  # nothing was killed or cut: the duplicate bound is 0
        tally(figures, good, pool.deliveries(), zs)
        late = sum(1 for status, attempts in statuses(zs, good).values() if status == "sent" and attempts != 1)
        figures.check(late == 0, f"{late} good notifications were sent only after their first attempt")
        states = zs.redis.hmget(p.state, list(bad))
        wrong: list[str] = []
        for (nid, kind), raw in zip(bad.items(), states, strict=True):
            try:
                state = json.loads(raw) if raw is not None else {}
            except ValueError:
                state = {"status": "unreadable", "last_error": raw}
            if state.get("status") != "failed" or not str(state.get("last_error", "")).startswith(REASON):
                wrong.append(f"{nid} ({kind}): {state.get('status')}, {str(state.get('last_error'))[:80]!r}")
        figures.check(not wrong, f"{len(wrong)} corrupt records not failed with the reason: {wrong[:3]}")
        dead = {int(m) for m in zs.redis.zrange(p.failed, 0, -1)}
        figures.check(
            dead == bad.keys(),
            f"dead letters: {len(dead & bad.keys())} of {bad_count} corrupt, {len(dead - bad.keys())} good",
        )
        logged = pool.log_count(REASON)
        figures.check(logged == bad_count, f"workers logged {logged} undecodable records, not {bad_count}")
        figures.scheduled = len(ids)
        figures.faults = bad_count
        figures.failed = len(dead)
        figures.notes = {
            "corrupt by kind": {kind: plan.bad_each for kind in CORRUPTIONS},
            "good sent on attempt 1": len(good) - late - figures.lost,
            "corrupt failed with the reason": bad_count - len(wrong),
            "worker exits": len(exited),
        }
    finally:
        pool.stop()
        zs.close()
    return figures.finish(started)
