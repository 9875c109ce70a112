from __future__ import annotations

import random

import pytest

from zsched.engine.backoff import MINUTE_MS, RetryPolicy


def test_default_is_the_seeds_5_10_20_minutes_then_give_up() -> None:
    policy = RetryPolicy()
    assert [policy.delay_ms(a) for a in (1, 2, 3, 4)] == [5 * MINUTE_MS, 10 * MINUTE_MS, 20 * MINUTE_MS, None]
    assert (policy.max_retries, policy.max_attempts) == (3, 4)


def test_exponential_caps_at_max() -> None:
    policy = RetryPolicy.exponential(base_ms=100, factor=3, retries=5, max_ms=1000)
    assert [policy.delay_ms(a) for a in range(1, 7)] == [100, 300, 900, 1000, 1000, None]


def test_jitter_stays_within_its_fraction() -> None:
    policy = RetryPolicy(delays_ms=(1000,), jitter=0.2)
    rng = random.Random(7)
    delays = {policy.delay_ms(1, rng) for _ in range(200)}
    assert all(800 <= d <= 1200 for d in delays if d is not None) and len(delays) > 10


@pytest.mark.parametrize("bad", [{"delays_ms": (-1,)}, {"jitter": 2.0}, {"factor": 0.5}])
def test_rejects_nonsense(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**bad)  # type: ignore[arg-type]
