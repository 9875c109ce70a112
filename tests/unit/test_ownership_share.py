"""A worker's share of the partitions: the shares of the live workers add up to the count and differ by one."""

from __future__ import annotations

import pytest

from zsched.engine.ownership import share


@pytest.mark.parametrize("partitions", [1, 2, 3, 4, 6, 7, 16])
@pytest.mark.parametrize("workers", [1, 2, 3, 5])
def test_shares_add_up_and_differ_by_at_most_one(partitions: int, workers: int) -> None:
    live = [f"w{i}" for i in range(workers)]
    shares = [share(partitions, live, me) for me in live]
    assert sum(shares) == partitions
    assert max(shares) - min(shares) <= 1


def test_a_worker_not_yet_listed_counts_itself() -> None:
    assert share(4, ["a"], "b") == 2
    assert share(4, [], "a") == 4
    assert share(1, ["a", "b"], "b") == 0  # one partition, two workers: the first by id owns it
