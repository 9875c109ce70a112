"""Partition hash tags on a cluster: ``spread`` tags land in equal slot ranges where plain ``{pN}`` bunch, and the
layout records which were used, so processes with the other naming refuse to run instead of missing every key."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import fakeredis
import pytest
from redis.crc import key_slot

from tests.clusterutil import SLOT_RANGES
from zsched import Core, Keyspace
from zsched.engine import Command, Op
from zsched.engine.layout import check_layout
from zsched.errors import ConfigError, LayoutError

KEY = "t:{meta}:layout"


def master(slot: int) -> int:
    return next(i for i, (first, last) in enumerate(SLOT_RANGES) if first <= slot <= last)


def test_plain_tags_bunch_on_one_of_three_masters() -> None:
    """Why spread tags exist: {p0}, {p1}, {p4}, {p5} all hash to the last third of the slots."""
    per_master = Counter(master(p.slot) for p in Keyspace("zsched", 6).partitions)
    assert per_master == {2: 4, 1: 1, 0: 1}


@pytest.mark.parametrize("count", [2, 3, 6, 9, 12, 48])
def test_spread_tags_put_each_partition_in_its_own_equal_slot_range(count: int) -> None:
    keys = Keyspace("zsched", count, tags="spread")
    for p in keys.partitions:
        assert p.index * 16384 // count <= p.slot < (p.index + 1) * 16384 // count, p.tag
        assert re.fullmatch(rf"zsched:\{{p{p.index}(\.\d+)?\}}", p.tag), p.tag  # readable: pN or pN.k
        assert p.slot == key_slot(p.due.encode()) == key_slot(p.user_channel("alice").encode())
    if count % 3 == 0:
        assert Counter(master(p.slot) for p in keys.partitions) == dict.fromkeys(range(3), count // 3)


def test_the_tags_of_one_partition_and_of_the_plain_layout_are_unchanged() -> None:
    assert Keyspace("zsched", 1, tags="spread").partitions[0].tag == "zsched:{p0}"
    assert Keyspace("zsched", 1, tags="spread").tags == "plain"
    assert [p.tag for p in Keyspace("zsched", 3).partitions] == ["zsched:{p0}", "zsched:{p1}", "zsched:{p2}"]


def test_routing_does_not_depend_on_the_tags() -> None:
    plain, spread = Keyspace("z", 6), Keyspace("z", 6, tags="spread")
    for who in ("alice", "bob", "42"):
        assert plain.for_recipient(who).index == spread.for_recipient(who).index
    assert spread.for_id(13).index == 1


def test_an_unknown_tag_naming_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="tags must be 'plain' or 'spread'"):
        Keyspace("z", 2, tags="hashed")  # type: ignore[arg-type]


def drive(op: Op[Any], r: fakeredis.FakeRedis) -> Any:
    try:
        steps = next(op)
        while True:
            steps = op.send([r.execute_command(*s.args) for s in steps if isinstance(s, Command)])
    except StopIteration as done:
        return done.value


def core(partitions: int, tags: str) -> Core:
    return Core(Keyspace("t", partitions, tags=tags))  # type: ignore[arg-type]


@pytest.fixture
def r() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def test_a_spread_keyspace_records_its_tags_and_refuses_plain_processes(r: fakeredis.FakeRedis) -> None:
    drive(check_layout(core(4, "spread")), r)
    assert r.hgetall(KEY) == {b"partitions": b"4", b"version": b"2", b"tags": b"spread"}
    drive(check_layout(core(4, "spread")), r)  # a second spread process agrees
    with pytest.raises(LayoutError, match="created with spread ones .* ZSCHED_PARTITION_TAGS=spread"):
        drive(check_layout(core(4, "plain")), r)


def test_a_plain_keyspace_refuses_spread_processes_and_keeps_no_tags(r: fakeredis.FakeRedis) -> None:
    drive(check_layout(core(4, "plain")), r)
    with pytest.raises(LayoutError, match="created with plain ones .* ZSCHED_PARTITION_TAGS=plain"):
        drive(check_layout(core(4, "spread")), r)
    assert r.hgetall(KEY) == {b"partitions": b"4", b"version": b"2"}  # the mistaken stamp was taken back
    drive(check_layout(core(4, "plain")), r)


def test_two_first_spread_processes_interleaved_agree(r: fakeredis.FakeRedis) -> None:
    """Each first step runs its commands in order; two fresh processes' steps interleave command by command."""
    first, second = check_layout(core(4, "spread")), check_layout(core(4, "spread"))
    a, b = next(first), next(second)
    replies: tuple[list[Any], list[Any]] = ([], [])
    for x, y in zip(a, b, strict=True):
        replies[0].append(r.execute_command(*x.args))
        replies[1].append(r.execute_command(*y.args))
    for op, got in zip((first, second), replies, strict=True):
        with pytest.raises(StopIteration):
            op.send(got)
    assert r.hget(KEY, "tags") == b"spread"
