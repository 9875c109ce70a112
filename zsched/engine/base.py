"""What every engine operation shares: the keyspace, the retry policy, retention, and the one clock."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import msgspec

from ..errors import ConfigError
from .backoff import RetryPolicy
from .keys import Keyspace, Partition
from .validation import (
    DEFAULT_DIGEST_MAX,
    DEFAULT_DIGEST_WINDOW_MS,
    MAX_DIGEST_MAX,
    MAX_DIGEST_WINDOW_MS,
    MIN_DIGEST_MAX,
    MIN_DIGEST_WINDOW_MS,
)

DAY_MS = 24 * 3600 * 1000
OP_TTL_MS = 60_000
"""How long a state-changing script call's outcome is kept for retries of that call: longer than a client's
whole retry window (``client.RETRIES`` + 1 tries of ``client.SOCKET_TIMEOUT_S`` each, plus backoff: 23 s)."""
OP_BUCKET_MS = 10_000
"""How wide a time bucket of schedule outcomes is (``op_slot``): a bucket's hash lives at most this plus
``op_ttl_ms``, so outcomes are held a little past their minute, not twice as long."""


MAX_DEAD = 100_000
"""The default cap on dead letters per partition (``Retention.max_dead``)."""


class Retention(msgspec.Struct, frozen=True):
    """How long terminal records are kept before purge removes them (the seed keeps cancelled 30 days; expired
    and collapsed records are kept as long as cancelled ones), and how many dead letters a partition keeps at
    most: when a failure takes it over ``max_dead`` (0: no cap), the oldest dead letters are dropped at once, as
    purge would remove them, and counted in the ``dead_dropped`` total."""

    sent_ms: int = 90 * DAY_MS
    cancelled_ms: int = 30 * DAY_MS
    failed_ms: int = 90 * DAY_MS
    max_dead: int = MAX_DEAD


class CoreBase:
    """The configuration the operations read; owns no connection."""

    def __init__(
        self,
        keyspace: Keyspace | None = None,
        *,
        retry: RetryPolicy | None = None,
        retention: Retention | None = None,
        idempotency_ttl_ms: int = DAY_MS,
        clock: Callable[[], int] | None = None,
        max_pending_per_creator: int = 100_000,
        max_call_bytes: int = 64 * 1024 * 1024,
        stage_ttl_ms: int = 5 * 60 * 1000,
        op_ttl_ms: int = OP_TTL_MS,
        digest_window_ms: int = DEFAULT_DIGEST_WINDOW_MS,
        digest_max: int = DEFAULT_DIGEST_MAX,
    ) -> None:
        if op_ttl_ms < 1:
            raise ConfigError(f"op_ttl_ms must be at least 1; got {op_ttl_ms}", "op_ttl_ms")
        if not MIN_DIGEST_WINDOW_MS <= digest_window_ms <= MAX_DIGEST_WINDOW_MS:
            raise ConfigError(
                f"digest_window_ms must be from {MIN_DIGEST_WINDOW_MS} (1 s) to {MAX_DIGEST_WINDOW_MS} (1 day); got "
                f"{digest_window_ms}",
                "digest_window_ms",
            )
        if not MIN_DIGEST_MAX <= digest_max <= MAX_DIGEST_MAX:
            raise ConfigError(
                f"digest_max must be from {MIN_DIGEST_MAX} to {MAX_DIGEST_MAX}; got {digest_max}", "digest_max"
            )
        self.keys = keyspace or Keyspace()
        self.retry = retry or RetryPolicy()
        self.retention = retention or Retention()
        self.idempotency_ttl_ms = idempotency_ttl_ms
        self.clock = clock
        self.max_pending_per_creator = max_pending_per_creator  # 0: no cap
        self.max_call_bytes = max_call_bytes
        # How long a many-partition call's staged parts wait for their commit (see ProducerOps._schedule_staged).
        self.stage_ttl_ms = stage_ttl_ms
        self.op_ttl_ms = op_ttl_ms
        # What a notification with a digest_key and no window or maximum of its own gets (see validation.digest).
        self.digest_window_ms = digest_window_ms
        self.digest_max = digest_max
        # partition index -> (when it was checked, rough ms; whether any recipient there has a zone or quiet
        # hours): a schedule call skips the preferences lookup where none has, rechecking once a second.
        self.preferences_seen: dict[int, tuple[int, bool]] = {}

    def now_arg(self) -> str:
        """ARGV[1] of every script: '' lets the server's TIME decide; a pinned clock passes its value."""
        return "" if self.clock is None else str(self.clock())

    def op_key(self, partition: Partition) -> str:
        """A fresh operation key for one script step: made once when the step is built, so every retry of the
        step (redis-py resends a command after a connection error or a timeout) names the same call, and the
        script answers it with the first run's outcome instead of running again."""
        return partition.op(new_op_id())

    def op_slot(self, partition: Partition, now_ms: int) -> tuple[str, str]:
        """A fresh operation id for one schedule step, and the hash that keeps its outcome: the partition's
        bucket for ``now_ms`` (this process's clock). Both are fixed when the step is built, so a resent step
        finds its outcome where it left it; the script keeps the bucket ``op_ttl_ms`` past each write, so a
        clock that disagrees with the server's only picks another bucket, never a shorter life."""
        return partition.ops(now_ms // min(OP_BUCKET_MS, self.op_ttl_ms)), new_op_id()

    def rough_now_ms(self) -> int:
        """This process's idea of now, used only for coarse sanity bounds, never to decide "due"."""
        return self.clock() if self.clock is not None else int(time.time() * 1000)


def new_op_id() -> str:
    """A random operation id (64 bits, hex): unique among the calls of one op_ttl_ms."""
    return os.urandom(8).hex()
