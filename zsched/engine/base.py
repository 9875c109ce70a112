"""What every engine operation shares: the keyspace, the retry policy, retention, and the one clock."""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from .backoff import RetryPolicy
from .keys import Keyspace

DAY_MS = 24 * 3600 * 1000


class Retention(msgspec.Struct, frozen=True):
    """How long terminal records are kept before purge removes them (the seed keeps cancelled 30 days)."""

    sent_ms: int = 90 * DAY_MS
    cancelled_ms: int = 30 * DAY_MS
    failed_ms: int = 90 * DAY_MS


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
    ) -> None:
        self.keys = keyspace or Keyspace()
        self.retry = retry or RetryPolicy()
        self.retention = retention or Retention()
        self.idempotency_ttl_ms = idempotency_ttl_ms
        self.clock = clock
        self.max_pending_per_creator = max_pending_per_creator  # 0: no cap
        self.max_call_bytes = max_call_bytes
        # How long a many-partition call's staged parts wait for their commit (see ProducerOps._schedule_staged).
        self.stage_ttl_ms = stage_ttl_ms

    def now_arg(self) -> str:
        """ARGV[1] of every script: '' lets the server's TIME decide; a pinned clock passes its value."""
        return "" if self.clock is None else str(self.clock())

    def rough_now_ms(self) -> int:
        """This process's idea of now, used only for coarse sanity bounds, never to decide "due"."""
        return self.clock() if self.clock is not None else int(time.time() * 1000)
