"""The read views driven by hand with canned replies, no Redis: status, a recipient's list (its lex
bounds, cursor and status filter), stats over partitions, and the dead letters."""

from __future__ import annotations

from typing import Any

import pytest

from zsched import Core, Keyspace
from zsched.engine import Command, Op, Partition, Script, list_dead
from zsched.engine.keys import parse_recipient_member, recipient_bounds, recipient_member
from zsched.errors import FieldError, NotFoundError
from zsched.models import ms_to_datetime

NOW = 1_700_000_000_000
PAYLOAD = b'{"title":"t","message":"m"}'


def finish(op: Op[Any], replies: list[Any]) -> Any:
    """Send the last batch of replies; the operation's result."""
    with pytest.raises(StopIteration) as done:
        op.send(replies)
    return done.value.value


def state(status: str, **extra: int) -> bytes:
    more = "".join(f',"{k}":{v}' for k, v in extra.items())
    return f'{{"status":"{status}","recipient":"alice","scheduled_at":{NOW},"created_at":{NOW}{more}}}'.encode()


def core(partitions: int = 1) -> Core:
    return Core(Keyspace("t", partitions), clock=lambda: NOW)


def read(p: Partition, partitions: int, *ids: int) -> Script:
    """The step reading the state and payload of ``ids``, also of recipients still pending in a call."""
    return Script(
        "read",
        [p.state, p.notifications, p.calls, p.call_recipients, p.call_starts, p.by_recipient],
        [partitions, *ids],
    )


def test_status_reads_state_and_payload_of_the_ids_partition() -> None:
    c = core(3)
    op = c.status(7)
    p = c.keys.for_id(7)
    assert next(op) == [read(p, 3, 7)]
    n = finish(op, [[state("pending"), PAYLOAD]])
    assert n.id == 7 and n.scheduled_status == "pending" and n.title == "t"


def test_status_of_an_unknown_id_is_not_found() -> None:
    op = core().status(7)
    next(op)
    c = core()
    p = c.keys.partitions[0]
    assert op.send([[None, None]]) == [
        Command(("HGET", p.forward, 7)),  # moved by a reshard?
        Command(("HGETALL", c.keys.layout)),  # or routed by a generation this process has not seen?
    ]
    with pytest.raises(NotFoundError):
        op.send([None, {b"partitions": b"1"}])


def test_status_of_a_moved_id_follows_its_forward() -> None:
    op = core().status(7)
    next(op)
    op.send([[None, None]])
    (step,) = op.send([b"40", {b"partitions": b"1"}])
    assert isinstance(step, Script) and step.name == "read" and step.args[1:] == [40]


def test_by_recipient_members_sort_by_id_within_a_recipient() -> None:
    assert recipient_member("alice", 42) == "alice 0000000000000042"
    assert parse_recipient_member(b"alice 0000000000000042") == ("alice", 42)
    upper, lower = recipient_bounds("alice")
    assert lower < "(" + recipient_member("alice", 1) < "(" + recipient_member("alice", 10**15) < upper
    assert recipient_bounds("alice", 42)[0] == "(alice 0000000000000042"


def test_list_for_pages_newest_first_from_the_cursor() -> None:
    c = core()
    p = c.keys.partitions[0]
    op = c.list_for("alice", limit=2, cursor=9)
    (scan,) = next(op)
    assert scan == Command(("ZREVRANGEBYLEX", p.by_recipient, "(alice 0000000000000009", "(alice ", "LIMIT", 0, 2))
    reads = op.send([[recipient_member("alice", 8).encode(), recipient_member("alice", 5).encode()]])
    assert reads == [read(p, 1, 8, 5)]
    page = finish(op, [[state("sent"), PAYLOAD, state("pending"), PAYLOAD]])
    assert [n.id for n in page.items] == [8, 5] and page.next_cursor == 5


def test_list_for_filters_by_status_and_skips_purged_records_scanning_on() -> None:
    op = core().list_for("alice", status="sent", limit=1)
    (scan,) = next(op)
    assert isinstance(scan, Command) and scan.args[2:4] == ("(alice!", "(alice ") and scan.args[-1] == 100
    ids = range(200, 100, -1)  # a full batch: there may be more below it
    op.send([[recipient_member("alice", i) for i in ids]])
    (again,) = op.send([[None, None, *[state("pending"), PAYLOAD] * 99]])
    assert isinstance(again, Command) and again.args[2] == "(alice 0000000000000101", "scanning on below the last id"
    op.send([[recipient_member("alice", 3)]])
    page = finish(op, [[state("sent"), PAYLOAD]])
    assert [n.id for n in page.items] == [3] and page.next_cursor is None, "the index ended: no more"


@pytest.mark.parametrize(("kwargs", "field"), [({"status": "lost"}, "status"), ({"limit": 0}, "limit")])
def test_list_for_rejects_bad_arguments(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(FieldError) as caught:
        next(core().list_for("alice", **kwargs))
    assert caught.value.field == field


def test_stats_adds_partitions_up_and_measures_lag_on_the_pinned_clock() -> None:
    c = core(2)
    op = c.stats()
    steps = next(op)
    assert steps[0] == Command(("TIME",)) and len(steps) == 1 + 2 * 21
    p0, p1 = c.keys.partitions
    assert Command(("ZCARD", p1.failed)) in steps and Command(("HGETALL", p0.counters)) in steps
    assert Command(("ZCARD", p0.call_starts)) in steps and Command(("GET", p1.call_pending)) in steps
    replies = [
        [b"1", b"0"],
        *[1, 0, 2, 0, 1, 0, 0, 2, 3, 0, 5, 1, [], [(b"7", b"%d" % (NOW - 100))], [(b"5", b"%d" % (NOW - 500))], []],
        {b"scheduled": b"4", b"sent": b"1"},
        *[1, b"5"],  # one of the 3 due entries is a call with 5 recipients still pending in it
        {b"promo": b"%d" % (NOW - 10)},
        2,  # two of promo's wait aside: pending too
        *[0, 0, 1, 0, 0, 2, 1, 0, 1, 4, 1, 2, [], [], [(b"6", f"{NOW - 2000}.0".encode())], []],
        {b"scheduled": b"3"},
        *[0, None],  # no calls here
        {b"promo": b"%d" % (NOW - 20), b"*": b"%d" % NOW},
        0,
    ]
    stats = finish(op, replies)
    assert stats.counts == {
        "pending": 10,
        "processing": 1,
        "sent": 2,
        "cancelled": 1,
        "failed": 2,
        "expired": 4,
        "collapsed": 4,
        "throttled": 6,
        "skipped": 3,
    }
    assert stats.totals == {"scheduled": 7, "sent": 1}
    assert stats.next_due_at == ms_to_datetime(NOW - 2000) and stats.oldest_overdue_ms == 2000
    assert stats.server_time == ms_to_datetime(NOW)
    assert stats.paused.all and stats.paused.types == ["promo"] and stats.paused.parked == 2
    assert stats.paused.since == {"promo": ms_to_datetime(NOW - 20), "*": ms_to_datetime(NOW)}, "the earliest"


def test_stats_with_nothing_due_has_no_lag() -> None:
    op = core().stats()
    next(op)
    stats = finish(op, [[b"1", b"0"], *[0] * 12, *[[]] * 4, {}, 0, None, {}, 0])
    assert stats.next_due_at is None and stats.oldest_overdue_ms == 0
    assert not stats.paused.all and stats.paused.types == [] and stats.paused.parked == 0


def test_list_dead_reads_each_partition_and_sorts_by_failure_time() -> None:
    c = core(2)
    op = list_dead(c, limit=5)
    assert next(op) == [Command(("ZRANGE", p.failed, 0, 4)) for p in c.keys.partitions]
    p0, p1 = c.keys.partitions
    assert op.send([[b"4", b"2"], [b"3"]]) == [read(p0, 2, 4, 2)]
    again = op.send([[state("failed", failed_at=NOW + 2), PAYLOAD, state("failed", failed_at=NOW), PAYLOAD]])
    assert again == [read(p1, 2, 3)]
    items = finish(op, [[state("failed", failed_at=NOW + 1), PAYLOAD]])
    assert [n.id for n in items] == [2, 3, 4]


def test_list_dead_needs_a_positive_limit() -> None:
    with pytest.raises(FieldError):
        next(list_dead(core(), limit=0))
