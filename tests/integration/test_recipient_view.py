"""The recipient view: gateways record their open sockets per recipient at each heartbeat (``engine.presence``), so
``GET /api/recipient`` on any process says what one recipient was sent, what their client acknowledged receiving,
what they marked read, and how many WebSockets they have open where."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import ManualClock
from tests.integration.http_support import future
from tests.integration.wsutil import ServerThread, open_socket, receive, until_ready, user_token, wait_for
from zsched import Core, Keyspace, Scheduler
from zsched.cli import main
from zsched.engine.presence import SocketReporter, recipient_sockets
from zsched.engine.processes import ProcessInfo, beat, forget
from zsched.settings import Settings
from zsched.web.app import create_app
from zsched.web.auth import TokenStore


def _gateway(pid: int) -> ProcessInfo:
    return ProcessInfo(
        id=f"h:{pid}:ab", kind="gateway", host="h", pid=pid, started_ms=0, version="0", partitions=[0], sockets=0
    )


@pytest.fixture
def pinned_zs(redis_url: str, keyspace: Keyspace, clock: ManualClock) -> Iterator[Scheduler]:
    with Scheduler(redis.Redis.from_url(redis_url), core=Core(keyspace, clock=clock)) as zs:
        yield zs


def test_any_process_reads_a_recipients_sockets_per_gateway(pinned_zs: Scheduler, clock: ManualClock) -> None:
    zs, core = pinned_zs, pinned_zs.core
    one, two = _gateway(1), _gateway(2)
    first, second = SocketReporter(one.id), SocketReporter(two.id)
    for info, reporter, counts in ((one, first, {"alice": 2, "bob": 1}), (two, second, {"alice": 1})):
        zs.run(beat(core, info))
        zs.run(reporter.report(core, counts))
    alice = zs.run(recipient_sockets(core, "alice"))
    assert alice.sockets == 3 and sorted((c.process_id, c.sockets) for c in alice.connections) == [
        (one.id, 2),
        (two.id, 1),
    ]
    assert zs.run(recipient_sockets(core, "bob")).sockets == 1
    assert zs.run(recipient_sockets(core, "carol")).sockets == 0
    assert zs.sockets("alice") == alice  # the library's name for the same read

    # The next beat sends only what changed: bob left, alice closed one socket.
    assert first.changes({"alice": 1}) == {"alice": 1, "bob": 0}
    zs.run(first.report(core, {"alice": 1}))
    assert zs.run(recipient_sockets(core, "alice")).sockets == 2 and zs.run(recipient_sockets(core, "bob")).sockets == 0
    assert set(zs.redis.hkeys(core.keys.sockets(one.id))) == {b"", b"alice"}  # only who is connected (and the mark)

    # The hash expired while the gateway was silent: changes alone are refused, everything is written again.
    zs.redis.delete(core.keys.sockets(one.id))
    zs.run(first.report(core, {"alice": 1, "dave": 4}))
    assert zs.run(recipient_sockets(core, "alice")).sockets == 2
    assert zs.run(recipient_sockets(core, "dave")).sockets == 4

    # A gateway whose heartbeat is late is listed, flagged, but not counted: its sockets likely died with it.
    clock.advance(60_000)
    zs.run(beat(core, two))
    alice = zs.run(recipient_sockets(core, "alice"))
    assert alice.sockets == 1 and {c.process_id: c.late for c in alice.connections} == {one.id: True, two.id: False}

    zs.run(forget(core, two.id))  # a clean stop takes its sockets with it
    assert not zs.redis.exists(core.keys.sockets(two.id))
    assert zs.run(recipient_sockets(core, "alice")).sockets == 0


@pytest.fixture
def served(redis_url: str, prefix: str) -> Iterator[ServerThread]:
    settings = Settings.of(
        redis_url=redis_url, prefix=prefix, rate_per_s=1000.0, rate_burst=1000, beat_every_s=0.2, idle_s=0.2
    )
    server = ServerThread(create_app(settings)).start()  # API, gateway and worker in one process
    yield server
    server.stop()


def test_the_view_shows_what_was_sent_acknowledged_and_read_and_the_open_socket(
    served: ServerThread, redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = f"http://127.0.0.1:{served.port}"
    alice = user_token(redis_url, prefix, "alice")
    r = redis.Redis.from_url(redis_url)
    admin = TokenStore(prefix).create(r, "ops", admin=True)[0]
    r.close()

    def view(token: str, **query: Any) -> httpx.Response:
        return httpx.get(f"{base}/api/recipient", params=query, headers={"Authorization": f"Bearer {token}"})

    assert view(admin, recipient="alice").json()["sockets"] == 0
    with open_socket(f"ws://127.0.0.1:{served.port}/ws?token={alice}") as ws:
        until_ready(ws)
        sent = httpx.post(
            f"{base}/api/notifications/schedule/",
            json={"recipients": ["alice"], "title": "Hi", "message": "m", "scheduled_at": future(0.5)},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert sent.status_code == 201, sent.text
        (nid,) = sent.json()["notification_ids"]
        wait_for(lambda: view(admin, recipient="alice").json()["sockets"] == 1, "the gateway to record the socket")
        delivered = receive(ws)
        assert delivered["id"] == nid
        ws.send(json.dumps({"type": "ack", "id": nid}))
        assert receive(ws)["type"] == "acked"
        got = view(alice).json()  # alice's own view: no recipient given
        assert got["recipient"] == "alice" and (got["listed"], got["sent"], got["received"], got["read"]) == (
            1,
            1,
            1,
            0,
        )
        assert got["items"][0]["id"] == nid and got["items"][0]["delivered_at"] is not None
        assert got["items"][0]["read_at"] is None
        marked = httpx.post(
            f"{base}/api/inbox/read/", json={"ids": [nid]}, headers={"Authorization": f"Bearer {alice}"}
        )
        assert marked.status_code == 200, marked.text
        got = view(admin, recipient="alice").json()
        assert got["read"] == 1 and got["items"][0]["read_at"] == marked.json()["read_at"][str(nid)]
        common = ["--redis-url", redis_url, "--prefix", prefix]
        assert main(["recipient", "alice", *common]) == 0
        out = capsys.readouterr().out
        assert "latest 1: 1 sent, 1 received (acknowledged by their client), 1 read" in out
        assert f"read {got['items'][0]['read_at'][:19]}" in out
        assert got["sockets"] == 1 and got["gateways"][0]["sockets"] == 1 and not got["gateways"][0]["late"]
    wait_for(lambda: view(admin, recipient="alice").json()["sockets"] == 0, "the closed socket to be recorded")
    refused = view(user_token(redis_url, prefix, "mallory"), recipient="alice")
    assert refused.status_code == 403 and "only your own" in refused.json()["detail"]
    assert view(admin, recipient="has space").status_code == 422


def test_the_cli_prints_the_view(
    pinned_zs: Scheduler, clock: ManualClock, redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    zs, core = pinned_zs, pinned_zs.core
    info = _gateway(7)
    zs.run(beat(core, info))
    zs.run(SocketReporter(info.id).report(core, {"erin": 2}))
    (nid,) = zs.schedule(["erin"], "Parcel", "m", delay=60).notification_ids
    common = ["--redis-url", redis_url, "--prefix", prefix]
    assert main(["recipient", "erin", *common]) == 0
    out = capsys.readouterr().out
    assert "erin: 2 open socket(s)" in out and "2 on h (pid 7)" in out and "Parcel" in out
    assert "latest 1: 0 sent, 0 received (acknowledged by their client), 0 read" in out and "read -" in out
    assert main(["recipient", "erin", "--json", *common]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["sockets"] == 2 and got["items"][0]["id"] == nid and got["items"][0]["delivered_at"] is None
    assert main(["recipient", "has space", *common]) == 2
