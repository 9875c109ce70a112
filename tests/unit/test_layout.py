"""The layout check driven by hand (the steps it yields) and over fakeredis (what it leaves in the layout hash):
the partition count and the layout version, recorded on first use and compared after."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest

from zsched import Core, Keyspace
from zsched.engine import Command, Op
from zsched.engine.layout import LAYOUT_VERSION, check_layout
from zsched.errors import ConfigError, LayoutError

KEY = "t:{meta}:layout"


def core(partitions: int = 1) -> Core:
    return Core(Keyspace("t", partitions))


def drive(op: Op[Any], r: fakeredis.FakeRedis) -> tuple[Any, int]:
    """Run every step on ``r``; the result and how many round trips it took."""
    trips = 0
    try:
        steps = next(op)
        while True:
            trips += 1
            replies = []
            for step in steps:
                assert isinstance(step, Command)
                replies.append(r.execute_command(*step.args))
            steps = op.send(replies)
    except StopIteration as done:
        return done.value, trips


@pytest.fixture
def r() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def test_the_current_layout_is_2() -> None:
    assert LAYOUT_VERSION == 2


def test_one_round_trip_stamps_both_fields_without_overwriting() -> None:
    op = check_layout(core(4))
    assert next(op) == [
        Command(("HSETNX", KEY, "partitions", 4)),
        Command(("HGET", KEY, "partitions")),
        Command(("HSETNX", KEY, "version", 2)),
        Command(("HGET", KEY, "version")),
        Command(("HGET", KEY, "tags")),
        Command(("HGETALL", KEY)),  # the generations a reshard recorded, if any
    ]
    with pytest.raises(StopIteration):
        op.send([1, b"4", 1, b"2", None, {b"partitions": b"4", b"version": b"2"}])


def test_an_older_stamp_is_raised_in_a_second_round_trip() -> None:
    op = check_layout(core(4))
    next(op)
    assert op.send([0, b"4", 0, b"1", None, {b"partitions": b"4"}]) == [Command(("HSET", KEY, "version", 2))]
    with pytest.raises(StopIteration):
        op.send([0])


def test_a_new_keyspace_is_stamped_in_one_round_trip(r: fakeredis.FakeRedis) -> None:
    assert drive(check_layout(core(3)), r) == (None, 1)
    assert r.hgetall(KEY) == {b"partitions": b"3", b"version": b"2"}


def test_a_layout_1_keyspace_without_a_stamp_is_stamped_2_and_keeps_its_count(r: fakeredis.FakeRedis) -> None:
    r.hset(KEY, "partitions", 2)  # what 0.2.0 recorded (0.1.0 recorded nothing)
    assert drive(check_layout(core(2)), r) == (None, 1)
    assert r.hgetall(KEY) == {b"partitions": b"2", b"version": b"2"}


def test_a_keyspace_stamped_1_is_raised_to_2(r: fakeredis.FakeRedis) -> None:
    r.hset(KEY, mapping={"partitions": 1, "version": 1})
    assert drive(check_layout(core()), r) == (None, 2)
    assert r.hget(KEY, "version") == b"2"
    assert drive(check_layout(core()), r) == (None, 1), "once raised, the next check is one round trip again"


def test_two_first_processes_agree(r: fakeredis.FakeRedis) -> None:
    first, second = check_layout(core()), check_layout(core())
    replies: tuple[list[Any], list[Any]] = ([], [])
    for a, b in zip(next(first), next(second), strict=True):  # their commands interleaved, one by one
        replies[0].append(r.execute_command(*a.args))
        replies[1].append(r.execute_command(*b.args))
    for op, got in zip((first, second), replies, strict=True):
        with pytest.raises(StopIteration):
            op.send(got)
    assert r.hgetall(KEY) == {b"partitions": b"1", b"version": b"2"}


def test_a_keyspace_of_a_newer_layout_is_refused_and_left_alone(r: fakeredis.FakeRedis) -> None:
    r.hset(KEY, mapping={"partitions": 1, "version": 3})
    with pytest.raises(
        LayoutError, match=r"newer zsched: storage layout 3 .* understands layouts up to 2; upgrade"
    ) as e:
        drive(check_layout(core()), r)
    assert e.value.field == "version" and isinstance(e.value, ConfigError)
    assert r.hget(KEY, "version") == b"3"


def test_a_newer_layout_is_named_before_a_partition_mismatch(r: fakeredis.FakeRedis) -> None:
    r.hset(KEY, mapping={"partitions": 4, "version": 7})
    with pytest.raises(LayoutError, match="storage layout 7"):
        drive(check_layout(core(1)), r)


def test_a_partition_mismatch_is_still_refused(r: fakeredis.FakeRedis) -> None:
    r.hset(KEY, mapping={"partitions": 4, "version": 2})
    with pytest.raises(LayoutError, match=r"ZSCHED_PARTITIONS=1, but .* created with 4 partitions") as e:
        drive(check_layout(core(1)), r)
    assert e.value.field == "partitions"


def test_a_partition_mismatch_on_an_old_stamp_is_refused_before_the_stamp_is_raised(r: fakeredis.FakeRedis) -> None:
    r.hset(KEY, mapping={"partitions": 4, "version": 1})
    with pytest.raises(LayoutError, match="ZSCHED_PARTITIONS=1"):
        drive(check_layout(core(1)), r)
    assert r.hget(KEY, "version") == b"1"


@pytest.mark.parametrize("garbage", [b"two", b"0", b"-1", b""])
def test_a_version_that_is_not_a_layout_number_is_refused(r: fakeredis.FakeRedis, garbage: bytes) -> None:
    r.hset(KEY, mapping={"partitions": 1, "version": garbage})
    with pytest.raises(LayoutError, match=r"not a layout number .* delete the field \(HDEL\)"):
        drive(check_layout(core()), r)
    assert r.hget(KEY, "version") == garbage


def test_decoded_replies_are_read_too() -> None:
    op = check_layout(core())
    next(op)
    with pytest.raises(LayoutError, match="storage layout 3"):
        op.send([0, "1", 0, "3", None, {"partitions": "1", "version": "3"}])
