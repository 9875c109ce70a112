"""The gateway's tenure: frozen out of full collections once there are enough sockets, thawed after churn."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from zsched.web.gateway.tenure import Tenure


class Node:
    """An object in a reference cycle, as a closed socket's transport and protocol are."""

    def __init__(self) -> None:
        self.other: Node | None = None


def _cycles(count: int) -> list[Node]:
    """``count`` two-object cycles, reachable only through the list returned."""
    held = []
    for _ in range(count):
        a, b = Node(), Node()
        a.other, b.other = b, a
        held.append(a)
    return held


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.collect()


def test_below_its_socket_count_it_never_freezes() -> None:
    tenure = Tenure(from_sockets=3)
    tenure.open()
    tenure.open()
    tenure.tick(open_now=2)
    assert gc.get_freeze_count() == 0 and not tenure.frozen


def test_zero_turns_it_off() -> None:
    tenure = Tenure(from_sockets=0)
    for _ in range(5):
        tenure.open()
    tenure.tick(open_now=5)
    assert gc.get_freeze_count() == 0


def test_a_negative_count_is_refused_with_what_to_give() -> None:
    with pytest.raises(ValueError, match="0 turns freezing off"):
        Tenure(from_sockets=-1)


def test_open_sockets_objects_are_frozen_and_a_collection_skips_them() -> None:
    tenure = Tenure(from_sockets=2)
    alive = [Node() for _ in range(100)]
    tenure.open()
    tenure.open()
    tenure.tick(open_now=2)
    assert tenure.frozen and gc.get_freeze_count() >= len(alive)
    # A freeze waits for the next socket: ticks without one change nothing.
    frozen = gc.get_freeze_count()
    tenure.tick(open_now=2)
    assert gc.get_freeze_count() == frozen


def test_cycles_left_by_closed_sockets_wait_for_the_thaw_that_churn_brings() -> None:
    tenure = Tenure(from_sockets=4)
    for _ in range(10):
        tenure.open()
    held = _cycles(50)  # a socket's objects: alive at the freeze, garbage in cycles once it closes
    watched = [weakref.ref(node) for node in held]
    tenure.tick(open_now=10)
    del held
    gc.collect()
    assert all(ref() is not None for ref in watched), "frozen cycles are skipped by a collection"

    for _ in range(4):  # max(from_sockets, half the 6 still open) = 4 closed
        tenure.close()
    tenure.tick(open_now=6)
    assert tenure.thaws == 1 and all(ref() is None for ref in watched)
    assert tenure.frozen and tenure.closed == 0, "the survivors are frozen again"


def test_fewer_closes_than_half_the_open_sockets_do_not_thaw() -> None:
    tenure = Tenure(from_sockets=2)
    for _ in range(100):
        tenure.open()
    tenure.tick(open_now=100)
    for _ in range(20):
        tenure.close()
    tenure.tick(open_now=80)  # 20 closed < 80 // 2
    assert tenure.thaws == 0
    for _ in range(20):
        tenure.close()
    tenure.tick(open_now=60)  # 40 closed >= 60 // 2
    assert tenure.thaws == 1


def test_closes_before_the_first_freeze_do_not_count_towards_a_thaw() -> None:
    tenure = Tenure(from_sockets=2)
    for _ in range(50):
        tenure.open()
        tenure.close()  # short-lived sockets, while fewer than two were open
    for _ in range(4):
        tenure.open()
    tenure.tick(open_now=4)
    tenure.tick(open_now=4)
    assert tenure.frozen and tenure.thaws == 0
