"""Resharding on a real server: ``reshard`` moves pending notifications from 2 partitions to 3 while a worker
delivers and a producer schedules, with notifications due during the move: each delivered exactly once, none
before its due time, old ids answering through their forward; an interrupted reshard, run again, finishes with
nothing lost or doubled."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.cluster import RedisCluster

from tests.clusterutil import LocalCluster
from tests.helpers import tick
from tests.integration.wsutil import GatewayServer, closed_with, open_socket, receive, until_ready, user_token
from zsched import AsyncScheduler, Core, Keyspace, RetryPolicy, Scheduler
from zsched.delivery.channel import Outcome
from zsched.delivery.ownership import Ownership
from zsched.delivery.worker import Worker
from zsched.engine import reshard
from zsched.engine.replies import MoveOutReply
from zsched.engine.steps import Step
from zsched.errors import FieldError, IdempotencyConflictError, LayoutError, UnavailableError, ValidationError
from zsched.models import Notification

OLD, NEW = 2, 3


class Timed:
    """A delivery that records each notification with the local time it was handed over (epoch ms), and fails
    the first attempt of those whose data says ``flaky``, so retries fall back into the old due sets."""

    def __init__(self) -> None:
        self.delivered: list[tuple[Notification, int]] = []

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]:
        now_ms = int(time.time() * 1000)
        outcomes: list[Outcome] = []
        for n in batch:
            if (n.data or {}).get("flaky") and n.attempts == 1:
                outcomes.append(ConnectionError("flaky once"))
            else:
                self.delivered.append((n, now_ms))
                outcomes.append(None)
        return outcomes


def _core(prefix: str, partitions: int) -> Core:
    return Core(Keyspace(prefix, partitions=partitions), retry=RetryPolicy(delays_ms=(50, 100, 200)))


@pytest.fixture
def old(redis_url: str, prefix: str) -> Iterator[Scheduler]:
    zs = Scheduler(redis.Redis.from_url(redis_url), core=_core(prefix, OLD))
    zs.ensure_layout()
    yield zs
    zs.close()


def _people(n: int, start: int = 0) -> list[str]:
    return [f"u{i}" for i in range(start, start + n)]


def _resolve(zs: Scheduler, ids: Sequence[int]) -> dict[int, Notification]:
    """Each id -> the notification it is now (an old one followed to the id it was re-issued under)."""
    return {i: zs.status(i) for i in ids}


async def test_reshard_while_a_worker_delivers_and_a_producer_schedules(
    old: Scheduler, redis_url: str, prefix: str
) -> None:
    # Due over the next few seconds, so many come due while the move runs: single and many-recipient calls,
    # within one partition and spanning several; some fail their first attempt and retry.
    due_of: dict[int, int] = {}  # id -> its due time (epoch ms), as scheduled
    for k in range(60):
        result = old.schedule([f"s{k}"], "single", "m", delay=0.3 + k * 0.05, data={"flaky": k % 7 == 0})
        due_of.update(dict.fromkeys(result.notification_ids, round(result.scheduled_at.timestamp() * 1000)))
    for k in range(12):
        result = old.schedule(_people(15, 100 * k), "call", "m", delay=0.5 + k * 0.25, priority="high")
        due_of.update(dict.fromkeys(result.notification_ids, round(result.scheduled_at.timestamp() * 1000)))
    spread = old.schedule(_people(20, 5000), "spread", "m", delay=0.5, spread=timedelta(seconds=2))
    due_of.update(dict.fromkeys(spread.notification_ids, 0))
    before = set(due_of)
    for i in before - set(spread.notification_ids):  # as stored: each partition's part reads its own clock
        due_of[i] = round(old.status(i).scheduled_at.timestamp() * 1000)

    timed = Timed()
    worker_zs = AsyncScheduler(aioredis.Redis.from_url(redis_url), core=_core(prefix, OLD))
    worker = Worker(worker_zs, timed, batch=20, lease_ms=2000)
    worker_task = asyncio.create_task(worker.run())
    producer_zs = AsyncScheduler(aioredis.Redis.from_url(redis_url), core=_core(prefix, OLD))
    produced: list[int] = []
    stop = asyncio.Event()

    async def produce() -> None:  # a producer that keeps the old count in its settings all along
        k = 0
        while not stop.is_set():
            people = [f"p{k}"] if k % 2 else _people(4, 9000 + 10 * k)
            result = await producer_zs.schedule(people, "during", "m", delay=0.2)
            produced.extend(result.notification_ids)
            k += 1
            await asyncio.sleep(0.02)

    producer_task = asyncio.create_task(produce())
    mover = AsyncScheduler(aioredis.Redis.from_url(redis_url), core=_core(prefix, NEW))
    passes: list[reshard.ReshardProgress] = []
    try:
        await asyncio.sleep(0.4)  # some are delivered from the old partitions before the move
        done = await mover.reshard(NEW, batch=5, on_progress=passes.append)
        await asyncio.sleep(0.5)  # the producer goes on in the new generation
        stop.set()
        await producer_task
        everything = before | set(produced)

        async def all_delivered() -> bool:
            return len({n.id for n, _ in timed.delivered}) >= len(everything)

        deadline = time.monotonic() + 60
        while not await all_delivered():
            assert time.monotonic() < deadline, f"{len(timed.delivered)} of {len(everything)} delivered"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a duplicate would show up now
    finally:
        stop.set()
        worker.should_exit = True
        await asyncio.gather(worker_task, producer_task, return_exceptions=True)
        for s in (worker_zs, producer_zs, mover):
            await s.close()

    assert done.done and done.generation == 1 and done.partitions_from == OLD and done.partitions_to == NEW
    assert done.moved > 0 and passes, "positive control: the reshard really moved notifications"
    id_base = reshard_base(old)
    now = Scheduler(redis.Redis.from_url(redis_url), core=_core(prefix, NEW))
    try:
        resolved = _resolve(now, sorted(everything))
        became = Counter(n.id for n in resolved.values())
        assert set(became.values()) == {1}, "two ids became one notification"
        moved = {i for i, n in resolved.items() if n.id != i}
        assert moved and all(i < id_base <= resolved[i].id for i in moved), "moved ids re-issued in the new range"
        assert len(moved) >= done.moved - 0, "every moved notification answers by its old id"
        delivered = Counter(n.id for n, _ in timed.delivered)
        assert set(delivered) == set(became), "every notification delivered, and nothing else"
        assert set(delivered.values()) == {1}, f"delivered twice: {[i for i, c in delivered.items() if c > 1]}"
        assert all(n.scheduled_status == "sent" for n in resolved.values())
        assert any(n.id >= id_base for n, _ in timed.delivered) and any(n.id < id_base for n, _ in timed.delivered)
        assert any(i < id_base for i in produced) and any(i >= id_base for i in produced), (
            "the producer scheduled in the old generation, then followed the seal to the new one"
        )
        for n, at_ms in timed.delivered:
            due_ms = round(n.scheduled_at.timestamp() * 1000)
            assert at_ms >= due_ms - 1, f"notification {n.id} delivered {due_ms - at_ms} ms early"
        for i, n in resolved.items():  # the move kept each one's due time (a retry sets its own)
            if due_of.get(i) and n.attempts == 1:
                assert round(n.scheduled_at.timestamp() * 1000) == due_of[i], i
        assert any(n.attempts == 2 for n in resolved.values()), "a retry was delivered"
        stale = Scheduler(redis.Redis.from_url(redis_url), core=_core(prefix, OLD))
        try:
            with pytest.raises(LayoutError, match="resharded .* to 3 partitions"):
                stale.ensure_layout()
        finally:
            stale.close()
    finally:
        now.close()


def reshard_base(zs: Scheduler) -> int:
    fields = zs.redis.hgetall(zs.core.keys.layout)
    return int(fields[b"id_base:1"])


def test_an_interrupted_reshard_run_again_finishes_with_nothing_lost_or_doubled(
    old: Scheduler, redis_url: str, prefix: str
) -> None:
    ids: list[int] = []
    for k in range(30):
        ids += old.schedule([f"s{k}"], "single", "m", delay=3600, created_by="ops").notification_ids
    for k in range(6):
        ids += old.schedule(_people(7, 100 * k), "call", "m", delay=3600, created_by="ops").notification_ids
    cancelled = ids[3]
    old.cancel(cancelled)
    pending = [i for i in ids if i != cancelled]
    call = old.schedule(_people(5, 900), "call", "m", delay=3600, created_by="ops").notification_ids
    pending += call
    old.reschedule(call[1], delay=7200)  # out of its call: a record of its own naming the call's payload
    old.edit(call[2], title="edited")  # a payload of its own, under a fresh holder id its record names
    moved_due = old.status(call[1]).scheduled_at
    mover = Scheduler(redis.Redis.from_url(redis_url), core=_core(prefix, NEW))
    try:
        first = mover.reshard(NEW, batch=4, max_moves=9)
        assert not first.done and first.entries == 9 and first.moved >= 9
        # Killed in the middle of a batch: taken into moving, one group re-issued, none forwarded.
        p = mover.core.keys.generations[0].partitions[0]
        (raw,) = _drive_steps(mover, [reshard._move_out(p, 3)])
        groups = MoveOutReply.read(raw).groups
        assert groups, "something left to take"
        taken = groups[0].items[0].old_id
        for change in (
            lambda: mover.cancel(taken),
            lambda: mover.reschedule(taken, delay=60),
            lambda: mover.edit(taken, title="new"),
        ):
            with pytest.raises(UnavailableError, match="being moved"):  # refused for that moment, not lost
                change()
        half = reshard._move(mover.core, p, groups[:1])
        mover._execute(next(half))  # the move_in calls ran; the forward never did
        with pytest.raises(ValidationError, match="under way"):
            mover.reshard(4)
        done = mover.reshard(NEW, batch=4)
        assert done.done and done.moved > 0
        resolved = _resolve(mover, pending)
        became = Counter(n.id for n in resolved.values())
        assert set(became.values()) == {1} and len(became) == len(pending), "each moved once, none twice"
        assert all(n.scheduled_status == "pending" for n in resolved.values())
        assert all(n.id != i for i, n in resolved.items()), "every pending one moved"
        assert mover.status(cancelled).scheduled_status == "cancelled", "what was not pending stays where it was"
        assert mover.status(call[1]).scheduled_at == moved_due and mover.status(call[1]).title == "call"
        assert mover.status(call[2]).title == "edited" and mover.status(call[3]).title == "call"
        stats = mover.stats()
        assert stats.counts["pending"] == len(pending)
        old_parts = mover.core.keys.generations[0].partitions
        assert sum(mover.redis.zcard(p.moving) for p in old_parts) == 0
        assert int(mover.redis.hget(old_parts[0].pending_by_creator, "ops") or 0) == 0
        assert sum(int(mover.redis.hget(p.pending_by_creator, "ops") or 0) for p in mover.core.keys.partitions) == len(
            pending
        )
        with pytest.raises(ValidationError, match="3 partitions already"):
            mover.reshard(NEW)
        again = mover.cancel(pending[0])  # a change by the old id reaches what it became
        assert again.scheduled_status == "cancelled" and again.id == resolved[pending[0]].id
    finally:
        mover.close()


def _drive_steps(zs: Scheduler, steps: list[Step]) -> list[Any]:
    return zs._execute(steps)


def test_a_keyspace_with_recurring_schedules_is_refused_untouched(old: Scheduler) -> None:
    old.create_recurring(["a"], "t", "m", every=60)
    with pytest.raises(ValidationError, match="recurring schedule"):
        old.reshard(NEW)
    layout = old.redis.hgetall(old.core.keys.layout)
    assert b"reshard" not in layout and b"generation" not in layout
    assert old.schedule(["b"], "t", "m", delay=60).count == 1, "nothing was sealed"


def test_cli_reshard_moves_and_reports(old: Scheduler, redis_url: str, prefix: str, repo_root: Path) -> None:
    ids = old.schedule(_people(10), "t", "m", delay=3600).notification_ids
    zsched = str(Path(sys.executable).parent / "zsched")
    helped = subprocess.run([zsched, "reshard", "--help"], capture_output=True, text=True, check=True)
    assert "--partitions" in helped.stdout and "re-run" in helped.stdout
    ran = subprocess.run(
        [zsched, "reshard", "--redis-url", redis_url, "--prefix", prefix, "--partitions", str(NEW)],
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stderr
    assert "moved 10 pending notification(s) from 2 to 3 partitions" in ran.stdout
    again = subprocess.run(
        [zsched, "reshard", "--redis-url", redis_url, "--prefix", prefix, "--partitions", str(NEW)],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 2 and "3 partitions already" in again.stderr
    now = Scheduler(redis.Redis.from_url(redis_url), core=_core(prefix, NEW))
    try:
        assert {now.status(i).scheduled_status for i in ids} == {"pending"}
    finally:
        now.close()


@pytest.mark.cluster
def test_reshard_on_a_cluster_while_a_worker_delivers(redis_cluster: LocalCluster) -> None:
    """Spread hash tags, 2 -> 3 partitions on three masters: every script of the move runs in one slot."""
    prefix = f"zr{uuid.uuid4().hex[:6]}"

    def core(partitions: int) -> Core:
        return Core(Keyspace(prefix, partitions=partitions, tags="spread"), retry=RetryPolicy(delays_ms=(50,)))

    def connect() -> aioredis.RedisCluster:
        return aioredis.RedisCluster(host="127.0.0.1", port=redis_cluster.masters[0])

    async def go() -> tuple[list[int], Timed, reshard.ReshardProgress]:
        producer = AsyncScheduler(connect(), core=core(OLD))
        ids: list[int] = []
        for k in range(30):
            ids += (await producer.schedule([f"s{k}"], "single", "m", delay=0.3 + k * 0.05)).notification_ids
        for k in range(5):
            ids += (await producer.schedule(_people(9, 100 * k), "call", "m", delay=0.5 + k * 0.3)).notification_ids
        timed = Timed()
        worker_zs = AsyncScheduler(connect(), core=core(OLD))
        worker = Worker(worker_zs, timed, batch=10)
        task = asyncio.create_task(worker.run())
        mover = AsyncScheduler(connect(), core=core(NEW))
        try:
            await asyncio.sleep(0.3)
            done = await mover.reshard(NEW, batch=3)
            ids += (await producer.schedule(["after"], "after", "m", delay=0.1)).notification_ids
            deadline = time.monotonic() + 30
            while len(timed.delivered) < len(ids) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
        finally:
            worker.should_exit = True
            await task
            for s in (producer, worker_zs, mover):
                await s.close()
        return ids, timed, done

    ids, timed, done = asyncio.run(go())
    assert done.done and done.moved > 0
    zs = Scheduler(RedisCluster(host="127.0.0.1", port=redis_cluster.masters[0]), core=core(NEW))
    try:
        became = Counter(zs.status(i).id for i in ids)
        delivered = Counter(n.id for n, _ in timed.delivered)
        assert set(became.values()) == {1} and set(delivered) == set(became) and set(delivered.values()) == {1}
        assert sum(1 for i in ids if zs.status(i).id != i) > 0, "positive control: some moved"
        for n, at_ms in timed.delivered:
            assert at_ms >= round(n.scheduled_at.timestamp() * 1000) - 1, f"{n.id} early"
        slots = {RedisCluster.keyslot(zs.redis, p.due) for p in zs.core.keys.partitions}
        assert len(slots) == NEW and all(p.tag.startswith(f"{prefix}:{{g1p") for p in zs.core.keys.partitions)
    finally:
        zs.close()


async def test_workers_sharing_partitions_by_ownership_take_shares_of_the_new_ones(
    old: Scheduler, redis_url: str, prefix: str
) -> None:
    ids: list[int] = []
    for k in range(40):
        ids += old.schedule([f"s{k}"], "single", "m", delay=0.3 + k * 0.03).notification_ids
    ids += old.schedule(_people(12), "call", "m", delay=0.8).notification_ids
    timed = Timed()
    schedulers = [AsyncScheduler(aioredis.Redis.from_url(redis_url), core=_core(prefix, OLD)) for _ in range(2)]
    workers = [Worker(s, timed, batch=10, ownership=Ownership(s, lease_ms=1500)) for s in schedulers]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    mover = AsyncScheduler(aioredis.Redis.from_url(redis_url), core=_core(prefix, NEW))
    try:
        await asyncio.sleep(0.3)
        done = await mover.reshard(NEW, batch=4)
        deadline = time.monotonic() + 30
        while len(timed.delivered) < len(ids) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        new_tags = sorted(p.tag for p in mover.core.keys.partitions)
        deadline = time.monotonic() + 10
        while sorted(p.tag for w in workers if w.ownership for p in w.ownership.owned()) != new_tags:
            assert time.monotonic() < deadline, "the workers never shared the new partitions"
            await asyncio.sleep(0.05)
        owned = [w.ownership.owned() if w.ownership else () for w in workers]
    finally:
        for w in workers:
            w.should_exit = True
        await asyncio.gather(*tasks)
        for s in (*schedulers, mover):
            await s.close()
    assert done.done and done.moved > 0
    became = Counter(old.status(i).id for i in ids)
    delivered = Counter(n.id for n, _ in timed.delivered)
    assert set(became.values()) == {1} and set(delivered) == set(became) and set(delivered.values()) == {1}
    shared = [p for held in owned for p in held]
    assert sorted(p.tag for p in shared) == sorted(p.tag for p in mover.core.keys.partitions), (
        "the workers share the new partitions, each held by one"
    )


def test_a_second_reshard_moves_on_and_the_first_ids_follow_both_forwards(
    old: Scheduler, redis_url: str, prefix: str
) -> None:
    first = old.schedule(_people(8), "t", "m", delay=3600).notification_ids
    three = Scheduler(redis.Redis.from_url(redis_url), core=_core(prefix, NEW))
    two = Scheduler(redis.Redis.from_url(redis_url), core=_core(prefix, OLD))
    try:
        assert three.reshard(NEW).done
        middle = three.schedule(_people(5, 50), "t", "m", delay=3600).notification_ids
        back = two.reshard(OLD)
        assert back.done and back.generation == 2 and back.moved == len(first) + len(middle)
        became = {i: two.status(i) for i in first + middle}
        assert len({n.id for n in became.values()}) == len(first) + len(middle)
        assert all(n.scheduled_status == "pending" for n in became.values())
        base = int(two.redis.hget(two.core.keys.layout, "id_base:2") or 0)
        assert all(n.id >= base for n in became.values()), "the first ids followed two forwards"
        assert {p.tag.split("{")[1] for p in two.core.keys.partitions} == {"g2p0}", "g2p1}"}
        assert old.cancel(first[0]).id == became[first[0]].id, "a process from before both still finds it"
    finally:
        three.close()
        two.close()


def test_a_resend_with_an_idempotency_key_from_before_the_reshard_is_replayed(
    old: Scheduler, redis_url: str, prefix: str
) -> None:
    single = old.schedule(["alice"], "t", "m", delay=3600, idempotency_key="one")
    spanning = old.schedule(_people(6), "t", "m", delay=3600, idempotency_key="many")
    new = Scheduler(redis.Redis.from_url(redis_url), core=_core(prefix, NEW))
    try:
        assert new.reshard(NEW).done
        again = new.schedule(["alice"], "t", "m", delay=3600, idempotency_key="one")
        assert again.replayed and again.notification_ids == single.notification_ids
        assert new.status(again.notification_ids[0]).id > single.notification_ids[0], "answered by its old id"
        many = new.schedule(_people(6), "t", "m", delay=3600, idempotency_key="many")
        assert many.replayed and many.notification_ids == spanning.notification_ids
        with pytest.raises(IdempotencyConflictError):
            new.schedule(["alice"], "other", "m", delay=3600, idempotency_key="one")
        assert new.stats().counts["pending"] == 7, "nothing created twice"
        for batch_op in (new.cancel_batch, new.batch_status, lambda b: new.reschedule_batch(b, delay=60)):
            with pytest.raises(FieldError, match="before the keyspace was resharded"):  # never the wrong ids
                batch_op(spanning.batch_id)
        with pytest.raises(FieldError, match="before the keyspace was resharded"):
            new.edit_batch(spanning.batch_id, title="x")
        fresh = new.schedule(["bob"], "t", "m", delay=3600, idempotency_key="new")
        assert not fresh.replayed and new.schedule(["bob"], "t", "m", delay=3600, idempotency_key="new").replayed
    finally:
        new.close()


def test_a_gateway_reconnects_its_sockets_to_the_new_partitions(redis_url: str, prefix: str) -> None:
    one = Scheduler(redis.Redis.from_url(redis_url), core=_core(prefix, 1))
    two = Scheduler(redis.Redis.from_url(redis_url), core=_core(prefix, 2))
    gw = GatewayServer(redis_url, prefix, heartbeat_s=60).start()  # a gateway of the 1-partition keyspace
    try:
        one.ensure_layout()
        token = user_token(redis_url, prefix, "dana")
        with open_socket(gw.url(token)) as ws:
            assert until_ready(ws) == []
            (before,) = one.schedule(["dana"], "before", "...", delay=0).notification_ids
            tick(one)
            got = receive(ws)
            assert got["id"] == before
            assert two.reshard(2).done
            code, reason = closed_with(ws, timeout_s=10)
            assert code == 1012 and "resharded" in reason, "told to reconnect"
        with open_socket(gw.url(token, since=got["stream_id"])) as ws:
            replayed = until_ready(ws)  # the new partition's inbox starts empty: the history before is not carried
            assert [m["type"] for m in replayed] == ["truncated"], "nothing resent, and the gap said"
            (after,) = two.schedule(["dana"], "after", "...", delay=0).notification_ids
            tick(two)
            assert receive(ws)["id"] == after, "live from the new partitions"
        assert after >= reshard_base(two)
    finally:
        gw.stop()
        one.close()
        two.close()


def test_lists_read_every_generation_newest_first(old: Scheduler, redis_url: str, prefix: str) -> None:
    sent = [old.schedule(["alice"], f"sent {k}", "m", delay=0, created_by="ops").notification_ids[0] for k in range(3)]
    tick(old)
    waiting = [
        old.schedule(["alice"], f"later {k}", "m", delay=3600, created_by="ops").notification_ids[0] for k in range(4)
    ]
    others = old.schedule(_people(6), "t", "m", delay=3600).notification_ids
    new = Scheduler(redis.Redis.from_url(redis_url), core=_core(prefix, NEW))
    try:
        assert new.reshard(NEW).done
        after = new.schedule(["alice"], "after", "m", delay=3600, created_by="ops").notification_ids[0]
        moved = [new.status(i).id for i in waiting]

        def every(**query: Any) -> list[Notification]:
            items, cursor = [], None
            while True:
                page = new.list(limit=2, cursor=cursor, **query)
                items += page.items
                if page.next_cursor is None:
                    return items
                cursor = page.next_cursor

        alice = every(recipient="alice")
        assert [n.id for n in alice] == sorted([after, *moved, *sent], reverse=True), "each once, newest first"
        assert [n.scheduled_status for n in alice][-3:] == ["sent"] * 3, "the history from before the move"
        assert [n.id for n in every(created_by="ops")] == [n.id for n in alice]
        everything = every()
        assert len(everything) == len({n.id for n in everything}) == len(alice) + len(others)
        assert [n.id for n in everything] == sorted((n.id for n in everything), reverse=True)
        stats = new.stats()  # over both generations, each notification counted once
        assert stats.counts["sent"] == 3 and stats.counts["pending"] == len(waiting) + len(others) + 1
        assert stats.totals["scheduled"] == len(sent) + len(waiting) + len(others) + 1
        assert stats.totals["moved_in"] == stats.totals["moved_out"] == len(waiting) + len(others)
    finally:
        new.close()


def test_contacts_preferences_and_websocket_opt_outs_follow_their_recipients(
    old: Scheduler, redis_url: str, prefix: str
) -> None:
    """From the moment the new generation opens (before anything has moved, so a process that follows it at once
    finds them) a recipient's contact, and the indexes a claim and a schedule call look up (who has a zone or
    quiet hours, who opted out of the websocket), are in their new partition; a notification moved there keeps
    honouring the opt-out."""
    people = _people(12)
    for who in people:
        old.set_contact(who, email=f"{who}@example.com", zone="Europe/Berlin", opt_out=["websocket:marketing"])
    pending = old.schedule(people, "sale", "m", delay=3600, type="marketing").notification_ids
    new = Scheduler(redis.Redis.from_url(redis_url), core=_core(prefix, NEW))
    try:
        first = new.reshard(NEW, max_moves=1)
        assert not first.done, "positive control: the move is not over, and the copy came first"
        moved = 0
        for who in people:
            p = new.core.keys.for_recipient(who)
            moved += p.index != old.core.keys.for_recipient(who).index
            assert new.contact(who).email == f"{who}@example.com"
            assert new.redis.sismember(p.with_preferences, who), who
            assert new.redis.sismember(p.websocket_opt_outs, who), who
        assert moved, "positive control: some recipients live in another partition after the move"
        assert new.reshard(NEW).done
        assert {new.status(i).scheduled_status for i in pending} == {"pending"}
    finally:
        new.close()
