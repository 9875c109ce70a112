"""Data written by zsched 0.1.0 is served after the upgrade (issue #12).

A keyspace is written with the v0.1.0 release's own scripts (``tests/fixtures/v0_1_0``, kept verbatim, so no git
is needed at run time), called with the KEYS and ARGV 0.1.0's ``zsched/core.py`` passed: pending notifications
for one recipient and a three-recipient call, some due now and some a year away, one already sent and one
claimed by a 0.1.0 worker that died holding it. Then the current library serves it as it is: status reads every
record, cancel works on a single notification and on one recipient of a call, a current worker delivers what is
due exactly once through a callable channel, and the layout hash is stamped with the current layout version.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from zsched import AsyncScheduler, Core, Keyspace, Scheduler
from zsched.delivery import Router
from zsched.delivery.worker import Worker
from zsched.engine.layout import LAYOUT_VERSION
from zsched.errors import LayoutError, NotPendingError
from zsched.models import Notification, ms_to_datetime

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "v0_1_0"
PARTITIONS = 2
DAY_MS = 86_400_000
SENT_KEEP_MS = 90 * DAY_MS  # 0.1.0's Retention.sent_ms
SCRIPTS = ("schedule", "claim", "ack")


class Release010:
    """zsched 0.1.0's producer and worker, reduced to the script calls its ``Core`` made.

    Key names are spelled out here as 0.1.0's ``zsched/keys.py`` built them, and recipients placed by its rule
    (CRC-32 of the id modulo the partition count), so nothing here depends on the current code.
    """

    def __init__(self, r: redis.Redis, prefix: str, partitions: int = PARTITIONS) -> None:
        self.prefix, self.partitions = prefix, partitions
        self.scripts = {name: r.register_script((FIXTURES / f"{name}.lua").read_text()) for name in SCRIPTS}

    def keys(self, partition: int, *names: str) -> list[str]:
        return [f"{self.prefix}:{{p{partition}}}:{name}" for name in names]

    def partition_of(self, recipient: str) -> int:
        return zlib.crc32(recipient.encode()) % self.partitions

    def schedule(self, recipients: list[str], payload: dict[str, Any], *, now_ms: int, due_ms: int) -> list[int]:
        """``Core.schedule`` with ``at=``: one script call per partition the recipients fall in."""
        body = json.dumps(payload, separators=(",", ":"))  # msgspec's compact JSON, defaults left out as 0.1.0 did
        groups: dict[int, list[str]] = {}
        for person in recipients:
            groups.setdefault(self.partition_of(person), []).append(person)
        ids: dict[str, int] = {}
        for index, members in groups.items():
            keys = self.keys(
                index, "due", "notifications", "state", "by_recipient", "counters", "sequence", "idempotency:"
            )  # no idempotency key: its key is the empty one, as 0.1.0 passed it
            (wakeup,) = self.keys(index, "wakeup")
            args: list[str | int] = [now_ms, due_ms, 0, self.partitions, index, 0, "", wakeup, body, *members]
            reply = self.scripts["schedule"](keys=keys, args=args)
            assert reply[0] == b"created", reply
            ids.update(zip(members, (int(i) for i in reply[3:]), strict=True))
        return [ids[person] for person in recipients]

    def claim(self, partition: int, *, now_ms: int, lease_ms: int) -> list[int]:
        keys = self.keys(partition, "due", "processing", "notifications", "state", "counters")
        reply = self.scripts["claim"](keys=keys, args=[now_ms, 100, lease_ms])
        return [int(i) for i in reply[2::3]]

    def ack(self, partition: int, ids: list[int], *, now_ms: int) -> None:
        keys = self.keys(partition, "due", "processing", "state", "sent", "counters")
        reply = self.scripts["ack"](keys=keys, args=[now_ms, SENT_KEEP_MS, *ids])
        assert int(reply[1]) == len(ids), reply


class Legacy:
    """What 0.1.0 left behind: ids by name, each with its recipient, title and due time."""

    def __init__(self) -> None:
        self.recipient: dict[int, str] = {}
        self.title: dict[int, str] = {}
        self.due_ms: dict[int, int] = {}

    def add(self, ids: list[int], recipients: list[str], title: str, due_ms: int) -> list[int]:
        for nid, person in zip(ids, recipients, strict=True):
            self.recipient[nid], self.title[nid], self.due_ms[nid] = person, title, due_ms
        return ids


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


async def test_a_v010_keyspace_is_served_after_the_upgrade(r: redis.Redis, redis_url: str, prefix: str) -> None:
    old, legacy = Release010(r, prefix), Legacy()
    now = int(time.time() * 1000)
    far = now + 365 * DAY_MS

    # -- written by 0.1.0 ---------------------------------------------------------------------------------
    def single(person: str, title: str, *, written_ms: int, due_ms: int) -> int:
        (nid,) = old.schedule([person], {"title": title, "message": "m"}, now_ms=written_ms, due_ms=due_ms)
        return legacy.add([nid], [person], title, due_ms)[0]

    sent = single("alice", "Sent by 0.1.0", written_ms=now - 120_000, due_ms=now - 120_000)
    assert old.claim(old.partition_of("alice"), now_ms=now - 120_000, lease_ms=30_000) == [sent]
    old.ack(old.partition_of("alice"), [sent], now_ms=now - 119_000)
    held = single("bob", "Held by a dead 0.1.0 worker", written_ms=now - 60_000, due_ms=now - 60_000)
    assert old.claim(old.partition_of("bob"), now_ms=now - 60_000, lease_ms=1_000) == [held]  # expired since
    due_now = single("carol", "Due now", written_ms=now - 5_000, due_ms=now - 5_000)
    later = single("dave", "Next year", written_ms=now, due_ms=far)
    to_cancel = single("erin", "Cancelled after the upgrade", written_ms=now, due_ms=far)
    crowd = ["fay", "gus", "hal"]
    call_payload = {
        "title": "Call due now",
        "message": "for three",
        "type": "reminder",
        "data": {"k": 1},
        "created_by": "billing",
    }
    ids = old.schedule(crowd, call_payload, now_ms=now - 5_000, due_ms=now - 5_000)
    call_now = legacy.add(ids, crowd, "Call due now", now - 5_000)
    trio = ["ivy", "jon", "kim"]
    ids = old.schedule(trio, {"title": "Call next year", "message": "for three"}, now_ms=now, due_ms=far)
    call_later = legacy.add(ids, trio, "Call next year", far)
    assert {old.partition_of(p) for p in [*crowd, *trio]} == {0, 1}, "the calls span both partitions"
    assert not r.exists(f"{prefix}:{{meta}}:layout"), "0.1.0 recorded no layout"

    # -- the current library, over the same prefix --------------------------------------------------------
    zs = Scheduler(redis.Redis.from_url(redis_url), core=Core(Keyspace(prefix, partitions=PARTITIONS)))
    expected = {nid: "pending" for nid in legacy.recipient} | {sent: "sent", held: "processing"}
    for nid, status in expected.items():
        n = zs.status(nid)
        got = (n.id, n.recipient, n.title, n.scheduled_status)
        assert got == (nid, legacy.recipient[nid], legacy.title[nid], status), n
        assert n.scheduled_at == ms_to_datetime(legacy.due_ms[nid])
    assert r.hgetall(f"{prefix}:{{meta}}:layout") == {b"partitions": b"2", b"version": str(LAYOUT_VERSION).encode()}
    n = zs.status(call_now[1])
    assert (n.message, n.type, n.data, n.created_by) == ("for three", "reminder", {"k": 1}, "billing")
    assert zs.status(sent).sent_at == ms_to_datetime(now - 119_000)
    assert [x.id for x in zs.list_for("erin").items] == [to_cancel]

    assert zs.cancel(to_cancel).scheduled_status == "cancelled"
    assert zs.cancel(call_later[1]).scheduled_status == "cancelled"  # one recipient of a stored call alone
    with pytest.raises(NotPendingError):
        zs.cancel(sent)
    assert zs.status(to_cancel).scheduled_status == zs.status(call_later[1]).scheduled_status == "cancelled"
    assert [zs.status(nid).scheduled_status for nid in (call_later[0], call_later[2])] == ["pending", "pending"]

    # -- a current worker delivers what is due, once ----------------------------------------------------
    delivered: list[Notification] = []
    router = Router(default=("app",))
    router.register("app", delivered.append)  # a callable channel
    scheduler = AsyncScheduler(aioredis.Redis.from_url(redis_url), core=zs.core)
    worker = Worker(scheduler, router)
    task = asyncio.create_task(worker.run())
    due = {held, due_now, *call_now}
    deadline = time.monotonic() + 20
    while {nid for nid in due if zs.status(nid).scheduled_status == "sent"} != due:
        assert time.monotonic() < deadline, f"not all sent: {[(nid, zs.status(nid).scheduled_status) for nid in due]}"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # more rounds: nothing is delivered a second time
    worker.should_exit = True
    await task
    await scheduler.close()

    assert Counter(n.id for n in delivered) == Counter(due), "each due one delivered exactly once"
    for n in delivered:
        assert (n.recipient, n.title) == (legacy.recipient[n.id], legacy.title[n.id])
    assert next(n for n in delivered if n.id == call_now[2]).data == {"k": 1}
    assert zs.status(held).attempts == 2, "the 0.1.0 worker's attempt counts"
    assert zs.status(sent).scheduled_status == "sent"
    assert [zs.status(nid).scheduled_status for nid in (later, call_later[0], call_later[2])] == ["pending"] * 3
    assert zs.stats().counts == {
        "pending": 3,
        "processing": 0,
        "sent": 6,
        "cancelled": 2,
        "failed": 0,
        "expired": 0,
        "collapsed": 0,
        "throttled": 0,
        "skipped": 0,
    }
    assert r.hget(f"{prefix}:{{meta}}:layout", "version") == str(LAYOUT_VERSION).encode()
    zs.close()


# -- the layout version on a real server ---------------------------------------------------------------------


def test_a_new_keyspace_is_stamped_with_the_current_layout(zs: Scheduler) -> None:
    zs.stats()
    assert zs.redis.hgetall(zs.core.keys.layout) == {b"partitions": b"1", b"version": str(LAYOUT_VERSION).encode()}


def test_an_older_stamp_is_raised_and_its_data_served(zs: Scheduler, redis_url: str, prefix: str) -> None:
    (nid,) = Release010(zs.redis, prefix, 1).schedule(["lou"], {"title": "Old", "message": "m"}, now_ms=0, due_ms=1)
    zs.redis.hset(zs.core.keys.layout, mapping={"partitions": 1, "version": 1})
    assert zs.status(nid).title == "Old"
    assert zs.redis.hget(zs.core.keys.layout, "version") == str(LAYOUT_VERSION).encode()


async def test_a_keyspace_of_a_newer_layout_is_refused(redis_url: str, prefix: str) -> None:
    r = redis.Redis.from_url(redis_url)
    r.hset(f"{prefix}:{{meta}}:layout", mapping={"partitions": 1, "version": LAYOUT_VERSION + 1})
    newer = rf"written by a newer zsched: storage layout {LAYOUT_VERSION + 1} .* up to {LAYOUT_VERSION}; upgrade zsched"
    zs = Scheduler(redis.Redis.from_url(redis_url), core=Core(Keyspace(prefix)))
    with pytest.raises(LayoutError, match=newer):
        zs.status(1)
    with pytest.raises(LayoutError, match=newer):
        zs.schedule(["mo"], "Not", "written", delay=60)
    azs = AsyncScheduler(aioredis.Redis.from_url(redis_url), core=Core(Keyspace(prefix)))
    with pytest.raises(LayoutError, match=newer):
        await azs.stats()
    command = [sys.executable, "-m", "zsched.cli", "worker", "--redis-url", redis_url, "--prefix", prefix]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and f"storage layout {LAYOUT_VERSION + 1}" in done.stderr, done.stderr
    assert r.hgetall(f"{prefix}:{{meta}}:layout") == {b"partitions": b"1", b"version": str(LAYOUT_VERSION + 1).encode()}
    assert list(r.scan_iter(match=f"{prefix}:*")) == [f"{prefix}:{{meta}}:layout".encode()], "nothing written"
    zs.close()
    await azs.close()
    r.close()
