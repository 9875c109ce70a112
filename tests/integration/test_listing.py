"""Listing: what a caller receives or created, everything for an admin, filters by recipient, creator and
status, and a cursor that goes on until the data really ends (``next_cursor`` None means "no more")."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from tests.conftest import ManualClock
from tests.integration.http_support import TestClient, Tokens, schedule_body
from zsched import Core, Keyspace, Scheduler
from zsched.engine import DAY_MS
from zsched.models import Page
from zsched.settings import Settings
from zsched.web.app import create_app

N = "/api/notifications"


@pytest.fixture
def parted(redis_url: str, prefix: str, clock: ManualClock) -> Iterator[Scheduler]:
    """Four partitions, so a creator's notifications and "everything" span several."""
    zs = Scheduler(redis.Redis.from_url(redis_url), core=Core(Keyspace(prefix, 4), clock=clock))
    yield zs
    zs.close()


def _all_pages(fetch: Callable[[int | None], Page]) -> tuple[list[int], int]:
    """Every id over every page (following next_cursor until None), and how many pages it took."""
    ids: list[int] = []
    cursor: int | None = None
    for pages in range(1, 10_000):
        page = fetch(cursor)
        ids += [n.id for n in page.items]
        if page.next_cursor is None:
            return ids, pages
        cursor = page.next_cursor
    raise AssertionError("the cursor never ended")


def test_a_creator_lists_what_it_created_across_partitions(parted: Scheduler) -> None:
    people = [f"user{i}" for i in range(40)]
    mine = parted.schedule(people, "t", "m", delay=3600, created_by="billing").notification_ids
    mine += parted.schedule(people[:7], "t", "m", delay=3600, created_by="billing").notification_ids
    theirs = parted.schedule(people[:5], "t", "m", delay=3600, created_by="crm").notification_ids
    assert {parted.core.keys.for_id(i).index for i in mine} == {0, 1, 2, 3}
    ids, pages = _all_pages(lambda c: parted.list(created_by="billing", limit=6, cursor=c))
    assert ids == sorted(mine, reverse=True) and pages == -(-len(mine) // 6)
    assert [n.id for n in parted.list(created_by="crm").items] == sorted(theirs, reverse=True)
    both = parted.list(created_by="billing", recipient="user3").items
    assert [n.id for n in both] == sorted((i for i in mine if parted.status(i).recipient == "user3"), reverse=True)
    parted.cancel(mine[0])
    assert [n.id for n in parted.list(created_by="billing", status="cancelled").items] == [mine[0]]
    assert parted.list(created_by="nobody") == Page(items=[], next_cursor=None)


def test_no_filter_lists_everything_newest_first(parted: Scheduler) -> None:
    created = parted.schedule([f"u{i}" for i in range(30)], "t", "m", delay=3600).notification_ids
    created += parted.schedule(["solo"], "t", "m", delay=3600, created_by="x").notification_ids
    parted.cancel(created[3])
    ids, _ = _all_pages(lambda c: parted.list(limit=7, cursor=c))
    assert ids == sorted(created, reverse=True)
    ids, _ = _all_pages(lambda c: parted.list(status="cancelled", limit=7, cursor=c))
    assert ids == [created[3]]


def test_a_filtered_list_goes_on_until_the_data_really_ends(zs: Scheduler) -> None:
    """One pending notification under 2,500 newer cancelled ones: the old scan gave up after 2,000 entries
    and answered an empty page with a null cursor, so the client believed there was nothing."""
    (oldest,) = zs.schedule(["rae"], "t", "m", delay=3600).notification_ids
    newer = [zs.schedule(["rae"], "t", "m", delay=3600).notification_ids[0] for _ in range(2_500)]
    for i in newer:
        zs.run(zs.core.cancel(i))
    first = zs.list_for("rae", status="pending", limit=1)
    assert first.items or first.next_cursor is not None, "an empty page with a null cursor hides the data"
    ids, pages = _all_pages(lambda c: zs.list_for("rae", status="pending", limit=1, cursor=c))
    assert ids == [oldest] and pages >= 2
    ids, _ = _all_pages(lambda c: zs.list(recipient="rae", status="cancelled", limit=1000, cursor=c))
    assert ids == sorted(newer, reverse=True)


def test_purge_removes_the_creator_index_entry_with_the_record(parted: Scheduler, clock: ManualClock) -> None:
    ids = parted.schedule(["a", "b", "c", "d", "e"], "t", "m", delay=60, created_by="billing").notification_ids
    keys = parted.core.keys
    assert sum(parted.redis.zcard(p.by_creator) for p in keys.partitions) == 5
    assert parted.redis.zrange(keys.for_id(ids[0]).by_creator, 0, -1)[0].decode().startswith("billing ")
    for i in ids[:3]:
        parted.cancel(i)
    clock.advance(31 * DAY_MS)
    assert sum(parted.run(parted.core.purge(p)) for p in keys.partitions) == 3
    assert sum(parted.redis.zcard(p.by_creator) for p in keys.partitions) == 2
    assert [n.id for n in parted.list(created_by="billing").items] == sorted(ids[3:], reverse=True)


@pytest.fixture
def app(redis_url: str, prefix: str) -> Iterator[TestClient]:
    settings = Settings.of(redis_url=redis_url, prefix=prefix, partitions=4, rate_per_s=1000.0, rate_burst=1000)
    with TestClient(create_app(settings, run_worker=False)) as c:
        yield c


def test_http_lists_by_creator_recipient_and_everything(app: TestClient, redis_url: str, prefix: str) -> None:
    tokens = Tokens(redis_url, prefix)
    billing, bob, admin = tokens.service("billing"), tokens.headers("bob"), tokens.headers("ops", admin=True)
    people = ["bob", *(f"user{i}" for i in range(12))]
    made = app.post(f"{N}/schedule/", headers=billing, json=schedule_body(people)).json()["notification_ids"]
    own = app.post(f"{N}/schedule/", headers=bob, json=schedule_body(["bob"])).json()["notification_ids"]

    def listed(headers: dict[str, str], query: str) -> list[int]:
        ids: list[int] = []
        cursor = ""
        while True:
            r = app.get(f"{N}/?limit=5{query}{cursor}", headers=headers)
            assert r.status_code == 200, r.text
            ids += [n["id"] for n in r.json()["items"]]
            if r.json()["next_cursor"] is None:
                return ids
            cursor = f"&cursor={r.json()['next_cursor']}"

    assert listed(billing, "&created_by=billing") == sorted(made, reverse=True)
    assert listed(billing, "") == []  # billing receives nothing: the default is what you receive
    assert listed(bob, "") == sorted([made[0], *own], reverse=True)
    assert listed(bob, "&created_by=bob") == own
    assert listed(bob, "&recipient=bob&created_by=billing") == [made[0]]
    assert listed(admin, "") == sorted(made + own, reverse=True)
    assert listed(admin, "&created_by=billing&status=pending") == sorted(made, reverse=True)
    assert listed(admin, "&recipient=user3") == [made[4]]
    for who, query in ((bob, "created_by=billing"), (billing, "recipient=bob"), (bob, "recipient=user3")):
        r = app.get(f"{N}/?{query}", headers=who)
        assert r.status_code == 403 and "you may list only" in r.json()["detail"], r.text
    r = app.get(f"{N}/?created_by=has%20space", headers=admin)
    assert r.status_code == 422 and r.json()["field"] == "created_by"
    tokens.redis.close()
