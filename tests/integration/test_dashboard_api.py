"""The dashboard's HTTP endpoints against a real server: the tables and their cursors, the processes from their
heartbeats, the bulk requeue, who may call them, and the page's own headers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta

import redis
import redis.asyncio as aioredis

from tests.conftest import ManualClock
from tests.helpers import Recorder, tick
from tests.integration.http_support import TestClient, Tokens, client, settings, tokens
from zsched import AsyncScheduler, Scheduler
from zsched.cli import main as zsched_main
from zsched.delivery.heartbeat import Heartbeat
from zsched.engine import Core, Keyspace
from zsched.engine.minutes import Tally, add_minute
from zsched.engine.tables import search_titles, table_page
from zsched.settings import Settings
from zsched.web.dashboard.page import CSP

__all__ = ["client", "settings", "tokens"]


def _ids(page: dict[str, object]) -> list[int]:
    return [int(n["id"]) for n in page["items"]]  # type: ignore[index, union-attr, call-overload]


def _walk(client: TestClient, admin: dict[str, str], table: str, limit: int) -> list[int]:
    """Every id of a table, page after page by cursor."""
    seen: list[int] = []
    cursor: str | None = None
    for _ in range(1000):
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        r = client.get(f"/api/tables/{table}/{query}", headers=admin)
        assert r.status_code == 200, r.text
        seen += _ids(r.json())
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the cursor never ended")


def test_each_table_shows_its_notifications_in_order_page_by_page(
    client: TestClient, tokens: Tokens, pinned: Scheduler, clock: ManualClock
) -> None:
    """Upcoming holds singles and every recipient of a call, soonest first, across pages of two; a claimed one
    is in processing with its lease deadline; a failed attempt is retrying; failed and sent newest first."""
    admin = tokens.headers("ops", admin=True)
    now = clock()
    late = pinned.schedule(["a"], "late", "m", delay=timedelta(hours=2)).notification_ids
    call = pinned.schedule(["b", "c", "d", "e", "f"], "call", "m", delay=timedelta(hours=1)).notification_ids
    soon = pinned.schedule(["g"], "soon", "m", delay=timedelta(minutes=30), priority="urgent").notification_ids
    assert _walk(client, admin, "upcoming", 2) == soon + call + late

    # Now something due: one claimed and held, one failing into retries, one sent.
    held, failing, sending = (
        pinned.schedule([r], r, "m", delay=d).notification_ids[0] for r, d in (("h", 1), ("i", 1.1), ("j", 1.2))
    )
    clock.advance(2_000)
    p = pinned.core.keys.partitions[0]
    claimed = pinned.run(pinned.core.claim(p, 1, 60_000))
    assert [n.id for n in claimed.notifications] == [held]
    processing = client.get("/api/tables/processing/", headers=admin).json()
    assert _ids(processing) == [held]
    assert processing["items"][0]["at"].startswith(time.strftime("%Y", time.gmtime((now + 62_000) / 1000)))
    tick(pinned, Recorder(fail={failing}))
    assert _ids(client.get("/api/tables/retrying/", headers=admin).json()) == [failing]
    assert _ids(client.get("/api/tables/sent/", headers=admin).json()) == [sending]
    for _ in range(4):  # the policy's three retries, then failed for good
        clock.advance(1_000)
        tick(pinned, Recorder(fail={failing}))
    assert _ids(client.get("/api/tables/failed/", headers=admin).json()) == [failing]
    assert _ids(client.get("/api/tables/retrying/", headers=admin).json()) == []
    assert 0 < len(_walk(client, admin, "upcoming", 1)) == len(soon + call + late)


def test_a_page_ending_inside_a_call_and_a_cursor_whose_entry_left(
    client: TestClient, tokens: Tokens, zs: Scheduler
) -> None:
    """A page may end inside a many-recipient call and the next goes on from the next recipient; when the entry
    a cursor names is gone (claimed or cancelled), the next page starts where it was, skipping nothing."""
    admin = tokens.headers("ops", admin=True)
    first = zs.schedule([f"u{i}" for i in range(7)], "call", "m", delay=timedelta(hours=1)).notification_ids
    after = [zs.schedule([f"v{i}"], "v", "m", delay=timedelta(hours=2 + i)).notification_ids[0] for i in range(3)]
    page = client.get("/api/tables/upcoming/?limit=4", headers=admin).json()
    assert _ids(page) == first[:4]
    page = client.get(f"/api/tables/upcoming/?limit=4&cursor={page['next_cursor']}", headers=admin).json()
    assert _ids(page) == [*first[4:], after[0]]
    zs.cancel(after[0])  # the entry the cursor comes back to
    zs.cancel(after[1])  # and the one right after it
    page = client.get(f"/api/tables/upcoming/?limit=4&cursor={page['next_cursor']}", headers=admin).json()
    assert _ids(page) == [after[2]] and page["next_cursor"] is None
    assert _ids(client.get("/api/tables/cancelled/", headers=admin).json()) == [after[1], after[0]]
    bad = client.get("/api/tables/upcoming/?cursor=nope", headers=admin)
    assert bad.status_code == 422 and bad.json()["field"] == "cursor"
    assert client.get("/api/tables/nope/", headers=admin).status_code == 404


def test_a_deep_cursor_costs_what_the_first_page_costs(redis_url: str, prefix: str) -> None:
    """Paging reads O(log N + page) per set: 200,000 due entries, and the page at entry 150,000 asks the server
    for a page's worth (the script's reply), not for everything before it."""
    r = redis.Redis.from_url(redis_url)
    core = Core(Keyspace(prefix))
    p = core.keys.partitions[0]
    members = {str(i): 1_000_000 + i // 3 for i in range(200_000)}  # three members share each score
    items = list(members.items())
    for i in range(0, len(items), 20_000):
        r.zadd(p.due, dict(items[i : i + 20_000]))
    zs = Scheduler(r, core=core)
    # Start at the entry (1_000_000 + 50_000, "150000") after removing it: binary search among its score's members.
    r.zrem(p.due, "150000")
    op = table_page(core, "upcoming", cursor="1050000:150000:0", limit=5)
    step = next(s for s in next(op) if s.keys == [p.due])  # normal priority's due set (one of four)
    reply = zs.scripts["page"](keys=step.keys, args=step.args)
    assert [m.decode() for m in reply[::2]] == ["150001", "150002", "150003", "150004", "150005", "150006"]
    started = time.perf_counter()
    for _ in range(20):
        zs.scripts["page"](keys=step.keys, args=step.args)
    assert time.perf_counter() - started < 5  # generous: an O(N) scan would take seconds per call, not ms
    zs.close()


def test_only_admins_read_tables_and_processes_and_requeue(client: TestClient, tokens: Tokens) -> None:
    user = tokens.headers("alice")
    for method, path in (("GET", "/api/tables/upcoming/"), ("GET", "/api/processes"), ("POST", "/api/dead/requeue/")):
        r = client.request(method, path, headers=user, json={"all": True})
        assert r.status_code == 403, (path, r.text)
        assert client.request(method, path, json={"all": True}).status_code == 401
    assert client.get("/api/me", headers=user).json() == {"user": "alice", "admin": False, "scopes": []}
    assert client.get("/api/me", headers=tokens.headers("ops", admin=True)).json()["admin"] is True


def test_requeue_dead_by_id_and_all(client: TestClient, tokens: Tokens, pinned: Scheduler, clock: ManualClock) -> None:
    admin = tokens.headers("ops", admin=True)
    dead = [pinned.schedule([f"r{i}"], "t", "m", delay=1).notification_ids[0] for i in range(3)]
    for _ in range(5):
        clock.advance(1_000)
        tick(pinned, Recorder(fail=set(dead)))
    assert sorted(_ids(client.get("/api/tables/failed/", headers=admin).json())) == dead
    r = client.post("/api/dead/requeue/", headers=admin, json={"ids": [dead[0], 999_999]})
    assert r.json() == {"requeued": [dead[0]], "missing": [999_999]}
    assert pinned.status(dead[0]).scheduled_status == "pending"
    assert client.post("/api/dead/requeue/", headers=admin, json={}).status_code == 422
    assert client.post("/api/dead/requeue/", headers=admin, json={"ids": [1], "all": True}).status_code == 422
    r = client.post("/api/dead/requeue/", headers=admin, json={"all": True})
    assert sorted(r.json()["requeued"]) == dead[1:]
    assert _ids(client.get("/api/tables/failed/", headers=admin).json()) == []


def test_processes_beat_and_a_silent_one_is_flagged_late(
    client: TestClient, tokens: Tokens, redis_url: str, prefix: str, capsys: object
) -> None:
    """Two processes beat every 100 ms; one stops beating without a word (as a killed one does) and is flagged
    late after three intervals; the other stops cleanly and leaves the list. The CLI shows the same."""
    admin = tokens.headers("ops", admin=True)

    async def go() -> None:
        zs = AsyncScheduler(aioredis.Redis.from_url(redis_url), core=Core(Keyspace(prefix)))
        worker = Heartbeat(zs, "worker", every_ms=100, in_flight=lambda: 7)
        gateway = Heartbeat(zs, "gateway", every_ms=100, sockets=lambda: 3)
        worker.start()
        gateway.start()
        await asyncio.sleep(0.3)
        ours = {worker.id, gateway.id}  # the app serving the client beats too, as a gateway
        listed = [p for p in client.get("/api/processes", headers=admin).json()["processes"] if p["id"] in ours]
        assert {(p["kind"], p["in_flight"], p["sockets"], p["late"]) for p in listed} == {
            ("worker", 7, None, False),
            ("gateway", 0, 3, False),
        }
        assert worker._task is not None
        worker._task.cancel()  # silent: its entry stays, its heartbeats stop
        await gateway.stop()  # clean: its entry goes
        await asyncio.sleep(0.6)
        listed = client.get("/api/processes", headers=admin).json()["processes"]
        (gone_quiet,) = [p for p in listed if p["id"] in ours]
        assert gone_quiet["kind"] == "worker" and gone_quiet["late"] and gone_quiet["age_ms"] >= 300
        await zs.close()

    asyncio.run(go())
    argv = ["workers", "--redis-url", redis_url, "--prefix", prefix, "--json"]
    assert zsched_main(argv) == 0
    (line,) = capsys.readouterr().out.splitlines()  # type: ignore[attr-defined]
    assert ("worker", True) in [(p["kind"], p["late"]) for p in json.loads(line)]
    assert zsched_main(argv[:-1]) == 0
    assert "LATE" in capsys.readouterr().out  # type: ignore[attr-defined]


def test_the_app_beats_and_serves_the_page_under_a_strict_csp(settings: object, tokens: Tokens) -> None:
    from zsched.web.app import create_app

    admin = tokens.headers("ops", admin=True)
    with TestClient(create_app(settings)) as c:  # type: ignore[arg-type]
        (me,) = c.get("/api/processes", headers=admin).json()["processes"]
        assert me["kind"] == "serve" and me["sockets"] == 0 and not me["late"]
        page = c.get("/dashboard")
        assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
        assert "<script src=" in page.text and "<script>" not in page.text and "style=" not in page.text
        js = c.get("/dashboard/dashboard.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
        assert "sessionStorage" in js.text and "?token=" not in js.text
        assert c.get("/dashboard/dashboard.css").headers["content-type"].startswith("text/css")
        assert c.get("/dashboard/page.py").status_code == 404
    with TestClient(create_app(settings)) as c:  # type: ignore[arg-type]
        processes = c.get("/api/processes", headers=admin).json()["processes"]
        assert len(processes) == 1, "the first app's clean stop took it off the list"


def test_the_library_reads_the_same_tables_and_processes(zs: Scheduler) -> None:
    ids = zs.schedule(["a", "b", "c"], "t", "m", delay=timedelta(hours=1)).notification_ids
    first = zs.table("upcoming", limit=2)
    assert [r.notification.id for r in first.rows] == ids[:2] and first.next_cursor is not None
    rest = zs.table("upcoming", cursor=first.next_cursor, limit=2)
    assert [r.notification.id for r in rest.rows] == ids[2:] and rest.next_cursor is None
    assert {r.partition for r in first.rows} == {0} and first.rows[0].at_ms > 0
    assert zs.processes() == []


def test_tables_merge_every_partition_and_one_partition_alone(redis_url: str, prefix: str) -> None:
    """With four partitions, upcoming merges every partition's due sets in due order, a call spanning partitions
    shows each recipient once, pages of three walk it all, and ?partition= (here ``partition=``) keeps to one."""
    zs = Scheduler(redis.Redis.from_url(redis_url), core=Core(Keyspace(prefix, partitions=4)))
    try:
        people = [f"p{i}" for i in range(12)]
        spread = zs.schedule(people, "call", "m", delay=timedelta(hours=1)).notification_ids
        singles = [
            zs.schedule([f"s{i}"], "one", "m", delay=timedelta(minutes=10 * (i + 1))).notification_ids[0]
            for i in range(4)
        ]
        urgent = zs.schedule(["u"], "urgent", "m", delay=timedelta(hours=3), priority="urgent").notification_ids
        seen: list[int] = []
        cursor = None
        while True:
            page = zs.table("upcoming", limit=3, cursor=cursor)
            seen += [r.notification.id for r in page.rows]
            assert [r.at_ms for r in page.rows] == sorted(r.at_ms for r in page.rows)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert len(seen) == len(set(seen)) == len(spread) + len(singles) + 1
        assert seen[:4] == singles and seen[-1] == urgent[0] and sorted(seen[4:-1]) == sorted(spread)
        for index in range(4):
            mine = zs.table("upcoming", limit=100, partition=index).rows
            assert mine and {r.partition for r in mine} == {index}
            assert {r.notification.id % 4 for r in mine} == {index}
        assert sum(len(zs.table("upcoming", limit=100, partition=i).rows) for i in range(4)) == len(seen)
    finally:
        zs.close()


def test_retrying_finds_the_few_retries_among_many_pending(pinned: Scheduler, clock: ManualClock) -> None:
    """Retries have no index: a page of retrying reads the due sets in batches until it has its rows (or has
    examined RETRYING_SCAN entries); walking it by cursor finds every retry once, however they are spread."""
    failing = [pinned.schedule([f"f{i}"], "f", "m", delay=1 + i / 1000).notification_ids[0] for i in range(3)]
    clock.advance(1_010)
    tick(pinned, Recorder(fail=set(failing)))  # due again 50 ms on (the policy's first delay)
    assert {pinned.status(i).attempts for i in failing} == {1}
    before = [pinned.schedule([f"b{i}"], "b", "m", delay=0.001 + i / 100_000).notification_ids[0] for i in range(700)]
    after = [pinned.schedule([f"a{i}"], "a", "m", delay=10 + i).notification_ids[0] for i in range(5)]
    seen: list[int] = []
    cursor = None
    for _ in range(20):
        page = pinned.table("retrying", limit=2, cursor=cursor)
        seen += [r.notification.id for r in page.rows]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == failing
    assert len(pinned.table("upcoming", limit=500).rows) == 500 and before and after


def test_a_killed_worker_goes_late_and_its_batch_comes_back(redis_url: str, prefix: str, zs: Scheduler) -> None:
    """A ``zsched worker`` beating every 200 ms holds a batch of three (its webhook never answers) and says so
    (in flight 3); SIGKILLed, its heartbeat goes late within a second, and once its 1 s lease runs out the batch
    is reaped and delivered by another worker."""
    hook = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # takes the webhook's request, never answers
    hook.bind(("127.0.0.1", 0))
    hook.listen(8)
    ids = zs.schedule(["kim", "lee", "max"], "held", "m", delay=0, channels=["webhook"]).notification_ids
    env = dict(
        os.environ,
        ZSCHED_CHANNELS="webhook",
        ZSCHED_WEBHOOK_URL=f"http://127.0.0.1:{hook.getsockname()[1]}/hook",
        ZSCHED_WEBHOOK_SECRET="test-secret",
        ZSCHED_WEBHOOK_TIMEOUT_S="120",
        ZSCHED_BEAT_EVERY_S="200ms",
        ZSCHED_LEASE_MS="1s",
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "zsched.cli", "worker", "--redis-url", redis_url, "--prefix", prefix],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def holding() -> bool:
            return any(p.info.pid == worker.pid and p.info.in_flight == 3 for p in zs.processes())

        _until(holding, "the worker to report its batch in flight")
        (mine,) = [p for p in zs.processes() if p.info.pid == worker.pid]
        assert (mine.info.kind, mine.late, mine.info.beat_every_ms) == ("worker", False, 200)
        worker.kill()
        worker.wait(10)
        _until(lambda: all(p.late for p in zs.processes() if p.info.pid == worker.pid), "its heartbeat to go late")
        assert {p.info.pid for p in zs.processes()} == {worker.pid}, "a killed worker stays listed, late"
        assert sorted(r.notification.id for r in zs.table("processing").rows) == ids
        time.sleep(1.2)  # its lease runs out
        recorder = Recorder()
        tick(zs, recorder, lease_ms=1000)  # reaps the expired leases, back to due
        tick(zs, recorder)
        assert sorted(n.id for n in recorder.delivered) == ids
        assert zs.table("processing").rows == []
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(5)
        hook.close()


def _until(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.05)


def test_minute_figures_add_once_per_call_and_read_back_as_quantiles(pinned: Scheduler, clock: ManualClock) -> None:
    """Counts go to the minute of the (server, here pinned) clock; a resent call adds nothing; quantiles are the
    upper bound of the bucket holding them; empty minutes read as zeros."""
    tally = Tally()
    for late_ms in [3.0] * 98 + [40.0, 7000.0]:
        tally.observe("sent", None, late_ms)  # type: ignore[arg-type]
    tally.observe("retry", None, 0)  # type: ignore[arg-type]
    op = add_minute(pinned.core, tally.take())
    (step,) = next(op)
    assert tally.counts == {}
    first = pinned.scripts[step.name](keys=step.keys, args=step.args)
    again = pinned.scripts[step.name](keys=step.keys, args=step.args)  # the same call, resent
    assert (first, again) == ([1], [0])
    clock.advance(60_000)
    assert pinned.run(add_minute(pinned.core, {"failed": 2}))
    *earlier, before, now = pinned.throughput(minutes=4)
    assert [m.sent for m in earlier] == [0, 0] and (earlier[0].p50_ms, earlier[0].p99_ms) == (None, None)
    assert (before.sent, before.retried, before.failed, before.p50_ms, before.p99_ms) == (100, 1, 0, 5, 50)
    assert (now.sent, now.failed) == (0, 2) and now.start_ms - before.start_ms == 60_000


def test_the_app_adds_what_its_worker_delivered_to_the_minute(
    settings: Settings, tokens: Tokens, zs: Scheduler
) -> None:
    from zsched.web.app import create_app

    admin = tokens.headers("ops", admin=True)
    ids = zs.schedule(["p", "q", "r"], "now", "m", delay=0).notification_ids
    with TestClient(create_app(settings.replace(beat_every_s=0.1))) as c:
        _until(lambda: {zs.status(i).scheduled_status for i in ids} == {"sent"}, "the worker to send them")

        def counted() -> int:
            minutes = c.get("/api/throughput?minutes=2", headers=admin).json()["minutes"]
            return sum(m["sent"] for m in minutes)

        _until(lambda: counted() == 3, "the next heartbeat to add them to the minute")
        (latest,) = [m for m in c.get("/api/throughput?minutes=2", headers=admin).json()["minutes"] if m["sent"]]
        assert latest["p50_ms"] is not None and latest["p99_ms"] >= latest["p50_ms"]
        assert c.get("/api/throughput?minutes=0", headers=admin).status_code == 422


def test_title_search_finds_the_newest_matches_among_the_latest(
    client: TestClient, tokens: Tokens, zs: Scheduler
) -> None:
    admin = tokens.headers("ops", admin=True)
    dentist = [zs.schedule([f"d{i}"], f"Dentist at {9 + i}", "m", delay=3600).notification_ids[0] for i in range(3)]
    for i in range(20):
        zs.schedule([f"o{i}"], "Other", "m", delay=3600)
    found = client.get("/api/search?title=dentist&limit=2", headers=admin).json()
    assert [n["id"] for n in found["items"]] == dentist[::-1][:2] and found["examined"] == 23
    assert client.get("/api/search?title=nobody", headers=admin).json() == {"items": [], "examined": 23}
    assert client.get("/api/search", headers=admin).status_code == 422
    assert client.get("/api/search?title=x", headers=tokens.headers("alice")).status_code == 403
    page = zs.run(search_titles(zs.core, "DENTIST", within=21))  # the newest 21: the others, and the last dentist
    assert ([n.id for n in page.items], page.examined) == ([dentist[2]], 21)
