"""Read receipts and the inbox API against a real server: a recipient's inbox newest first with the unread count,
mark one read, mark all read (``read_at`` recorded, the first mark winning), over the library, HTTP and the
WebSocket, the unread count pushed to a socket that asks for it when a delivery or a mark changes it, and the
reads' memory bounded by the inbox (it expires with it and keeps no id the inbox does not hold)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.conftest import ManualClock
from tests.helpers import tick
from tests.integration.http_support import TestClient, Tokens, tokens
from tests.integration.wsutil import GatewayServer, open_socket, receive, until_ready, user_token
from zsched import AsyncScheduler, Scheduler
from zsched.delivery import InboxDelivery
from zsched.errors import FieldError
from zsched.settings import Settings
from zsched.web.app import create_app

__all__ = ["tokens"]


def deliver(zs: Scheduler, clock: ManualClock, recipient: str, count: int) -> list[int]:
    """``count`` notifications to ``recipient`` through the inbox (the claim itself delivers them)."""
    ids = [zs.schedule([recipient], f"n{i}", "m", delay=1).notification_ids[0] for i in range(count)]
    clock.advance(2000)
    tick(zs)
    return ids


def test_the_inbox_lists_newest_first_and_counts_unread(pinned: Scheduler, clock: ManualClock) -> None:
    ids = deliver(pinned, clock, "bob", 5)
    page = pinned.inbox("bob", limit=2)
    assert page.unread == 5 and [i.notification["id"] for i in page.items] == ids[:-3:-1]
    assert not any(i.read for i in page.items) and page.next_before == page.items[-1].stream_id
    rest = pinned.inbox("bob", limit=10, before=page.next_before)
    assert [i.notification["id"] for i in rest.items] == ids[2::-1] and rest.next_before is None
    for zero in ("0-0", "0-000"):  # nothing is older (the fuzz found a ResponseError here)
        oldest = pinned.inbox("bob", before=zero)
        assert oldest.items == [] and oldest.unread == 5 and oldest.next_before is None
    marks = pinned.mark_read("bob", [ids[1], ids[3], 999_999])
    assert marks.unread == 3 and set(marks.read_at) == {ids[1], ids[3]}  # an unknown id is left out
    first = pinned.status(ids[1]).read_at
    assert first is not None and pinned.mark_read("bob", [ids[1]]).read_at[ids[1]] == first  # the first mark wins
    assert {i.notification["id"] for i in pinned.inbox("bob").items if i.read} == {ids[1], ids[3]}
    assert pinned.mark_read("alice", [ids[0]]).read_at == {}  # not alice's: left alone
    assert pinned.status(ids[0]).read_at is None
    assert pinned.mark_all_read("bob").unread == 0
    assert all(pinned.status(i).read_at is not None for i in ids)
    later = deliver(pinned, clock, "bob", 2)
    page = pinned.inbox("bob")
    assert page.unread == 2 and [i.read for i in page.items] == [False, False, True, True, True, True, True]
    assert [i.notification["id"] for i in page.items[:2]] == later[::-1]
    with pytest.raises(FieldError):
        pinned.mark_read("bob", [])
    with pytest.raises(FieldError):
        pinned.inbox("bob", before="yesterday")


def test_reads_are_bounded_by_the_inbox(pinned: Scheduler, clock: ManualClock, redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    reads = pinned.core.keys.for_recipient("bob").reads("bob")
    inbox = pinned.core.keys.for_recipient("bob").inbox("bob")
    ids = deliver(pinned, clock, "bob", 3)
    pinned.mark_read("bob", ids[:2])
    assert r.pttl(reads) > 0 and abs(r.pttl(reads) - r.pttl(inbox)) < 1000  # it goes when the inbox does
    pinned.mark_read("bob", list(range(10_000_000, 10_000_500)))  # ids the inbox never had are not kept
    assert r.hlen(reads) <= 3
    pinned.mark_all_read("bob")
    assert r.hkeys(reads) == [b"upto"]
    r.delete(inbox)  # the inbox expired: the reads go at the next mark
    pinned.mark_read("bob", ids[:1])
    assert not r.exists(reads)
    deliver(pinned, clock, "bob", 1)
    pinned.mark_all_read("bob")
    assert r.exists(reads) and pinned.erase_recipient("bob").inbox_entries_removed == 1
    assert not r.exists(reads) and not r.exists(inbox)  # an erasure takes what they read too
    r.close()


def test_the_inbox_over_http(
    pinned: Scheduler, clock: ManualClock, redis_url: str, prefix: str, tokens: Tokens
) -> None:
    ids = deliver(pinned, clock, "bob", 3)
    settings = Settings.of(redis_url=redis_url, prefix=prefix)
    with TestClient(create_app(settings, run_worker=False)) as client:
        bob, admin = tokens.headers("bob"), tokens.headers("ops", admin=True)
        got = client.get("/api/inbox/?limit=2", headers=bob).json()
        assert got["unread"] == 3 and [i["notification"]["id"] for i in got["items"]] == ids[:0:-1]
        marked = client.post("/api/inbox/read/", headers=bob, json={"ids": [ids[0]]}).json()
        assert marked["unread"] == 2 and list(marked["read_at"]) == [str(ids[0])]
        assert client.get("/api/inbox/?recipient=bob", headers=tokens.headers("mallory")).status_code == 403
        assert client.post("/api/inbox/read_all/?recipient=bob", headers=admin).json() == {"unread": 0, "read_at": {}}
        view = client.get(f"/api/notifications/{ids[1]}/", headers=bob).json()
        assert view["read_at"] is not None
        assert client.post("/api/inbox/read/", headers=bob, json={"ids": []}).status_code == 422


@pytest.fixture
def gw(redis_url: str, prefix: str) -> Iterator[GatewayServer]:
    server = GatewayServer(redis_url, prefix).start()
    yield server
    server.stop()


def test_the_unread_count_is_pushed_to_a_socket_that_asks(
    pinned: Scheduler, clock: ManualClock, gw: GatewayServer, redis_url: str, prefix: str
) -> None:
    ids = deliver(pinned, clock, "bob", 2)
    token = user_token(redis_url, prefix, "bob")
    with open_socket(gw.url(token) + "&unread=1") as ws, open_socket(gw.url(token)) as plain:
        assert len(until_ready(ws)) == 2 and len(until_ready(plain)) == 2
        assert receive(ws)["count"] == 2  # after ready: the count now
        (new,) = deliver(pinned, clock, "bob", 1)
        assert receive(ws)["id"] == new and receive(ws)["count"] == 3  # a delivery: one more
        assert receive(plain)["id"] == new  # a socket that did not ask gets no counts
        ws.send(f'{{"type": "read", "ids": [{ids[0]}, {new}]}}')
        answers = [receive(ws), receive(ws)]  # the answer, and the count published for every socket of bob's
        marked = next(a for a in answers if a["type"] == "marked")
        assert set(marked["read_at"]) == {str(ids[0]), str(new)} and marked["unread"] == 1
        assert next(a for a in answers if a["type"] == "unread")["count"] == 1
        pinned.mark_all_read("bob")  # a mark made elsewhere (HTTP, the library) reaches the socket too
        assert receive(ws) == {"type": "unread", "count": 0, "stream_id": marked_stream(pinned)}
        ws.send('{"type": "read_all"}')
        kinds = {receive(ws)["type"], receive(ws)["type"]}
        assert kinds == {"marked", "unread"}
        plain.send('{"type": "ping"}')
        assert receive(plain)["type"] == "pong"  # no unread count came before it


def marked_stream(zs: Scheduler) -> str:
    """The newest stream id of bob's inbox."""
    return zs.inbox("bob", limit=1).items[0].stream_id


async def test_the_async_client_reads_and_marks_the_inbox(azs: AsyncScheduler) -> None:
    (nid,) = (await azs.schedule(["bob"], "t", "m", channels=["websocket"], delay=0)).notification_ids
    inbox = InboxDelivery(azs.redis, azs.core.keys)
    (n,) = [await azs.status(nid)]
    assert await inbox.deliver([n]) == [None]  # appended, as the worker's channel would
    await azs.run(azs.core.ack(azs.core.keys.for_id(nid), [nid]))
    assert (await azs.inbox("bob")).unread == 1
    assert (await azs.mark_read("bob", [nid])).unread == 0
    assert (await azs.mark_all_read("bob")).unread == 0
    assert (await azs.status(nid)).read_at is not None
