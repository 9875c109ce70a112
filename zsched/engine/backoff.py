"""Retry-delay arithmetic: pure functions of the attempt number, no I/O."""

from __future__ import annotations

import random

import msgspec

from ..errors import ConfigError

MINUTE_MS = 60_000


class RetryPolicy(msgspec.Struct, frozen=True):
    """How long to wait before each retry, and how many retries there are.

    The default is the seed's: 5, 10 and 20 minutes, then the notification fails. Give ``delays_ms``
    for an explicit list, or ``base_ms``/``factor``/``max_ms``/``retries`` for an exponential one.
    ``jitter`` spreads each delay by up to that fraction either way, so a burst of failures does not
    retry in lockstep.
    """

    delays_ms: tuple[int, ...] | None = (5 * MINUTE_MS, 10 * MINUTE_MS, 20 * MINUTE_MS)
    base_ms: int = 5 * MINUTE_MS
    factor: float = 2.0
    max_ms: int = 24 * 60 * MINUTE_MS
    retries: int = 3
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.delays_ms is not None and any(d < 0 for d in self.delays_ms):
            raise ConfigError(f"retry delays must be >= 0 ms; got {self.delays_ms}", "delays_ms")
        if not 0 <= self.jitter <= 1:
            raise ConfigError(f"jitter must be a fraction between 0 and 1; got {self.jitter}", "jitter")
        if self.retries < 0 or self.base_ms < 0 or self.factor < 1:
            raise ConfigError(
                "retries and base_ms must be >= 0 and factor >= 1; got "
                f"retries={self.retries}, base_ms={self.base_ms}, factor={self.factor}"
            )

    @classmethod
    def exponential(
        cls, base_ms: int, factor: float = 2.0, retries: int = 3, max_ms: int = 24 * 60 * MINUTE_MS, jitter: float = 0.0
    ) -> RetryPolicy:
        """``base_ms``, then ``base_ms * factor``, ... capped at ``max_ms``, ``retries`` times."""
        return cls(delays_ms=None, base_ms=base_ms, factor=factor, retries=retries, max_ms=max_ms, jitter=jitter)

    @property
    def max_retries(self) -> int:
        """How many retries follow the first attempt."""
        return len(self.delays_ms) if self.delays_ms is not None else self.retries

    @property
    def max_attempts(self) -> int:
        """The first attempt plus every retry."""
        return 1 + self.max_retries

    def delay_ms(self, failed_attempt: int, rng: random.Random | None = None) -> int | None:
        """The wait before retrying after attempt ``failed_attempt`` (1-based) failed; None: give up."""
        if failed_attempt < 1 or failed_attempt > self.max_retries:
            return None
        if self.delays_ms is not None:
            delay = float(self.delays_ms[failed_attempt - 1])
        else:
            delay = min(self.base_ms * self.factor ** (failed_attempt - 1), float(self.max_ms))
        if self.jitter:
            delay *= 1 + (rng or random).uniform(-self.jitter, self.jitter)
        return max(0, round(delay))
