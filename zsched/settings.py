"""Settings from the environment (``ZSCHED_*``) and command-line flags, and what they build."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import msgspec
import redis
import redis.asyncio as aioredis

from .client import AsyncScheduler, Scheduler
from .embedded import DEFAULT_DATA_DIR, EmbeddedServer
from .engine.backoff import RetryPolicy
from .engine.core import DAY_MS, Core, Retention
from .engine.keys import Keyspace

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS}


def parse_duration_ms(text: str) -> int:
    """``"500ms"``, ``"2s"``, ``"1h30m"``, ``"7d"`` (or a bare number of seconds) as milliseconds."""
    text = text.strip().lower()
    try:
        return round(float(text) * 1000)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}; write e.g. 500ms, 2s, 5m, 1h30m or 7d")
    return round(sum(float(n) * _UNIT_MS[u] for n, u in parts))


class Settings(msgspec.Struct, kw_only=True):
    """Everything a zsched process is configured by; ``from_env`` reads ``ZSCHED_*`` variables."""

    redis_url: str | None = None
    data_dir: str = str(DEFAULT_DATA_DIR)
    prefix: str = "zsched"
    partitions: int = 1
    retry_delays_ms: tuple[int, ...] = (300_000, 600_000, 1_200_000)
    keep_sent_ms: int = 90 * DAY_MS
    keep_cancelled_ms: int = 30 * DAY_MS
    keep_failed_ms: int = 90 * DAY_MS
    lease_ms: int = 30_000
    batch: int = 100
    rate_per_s: float = 10.0
    rate_burst: int = 50
    auth_fail_per_s: float = 1.0  # failed authentications refilled per second, per client address
    auth_fail_burst: int = 20  # failed authentications one address may make at once
    channels: tuple[str, ...] = ("websocket",)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_timeout_s: float = 10.0
    allowed_origins: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``ZSCHED_*`` variables, then non-None ``overrides`` (command-line flags)."""
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {}
        for field in msgspec.structs.fields(cls):
            raw = env.get(f"ZSCHED_{field.name.upper()}")
            if raw is not None and raw != "":
                values[field.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values.get("retry_delays_ms"), str):
            values["retry_delays_ms"] = [parse_duration_ms(d) for d in values["retry_delays_ms"].split(",")]
        for name in ("channels", "allowed_origins"):
            if isinstance(values.get(name), str):
                values[name] = [c.strip() for c in values[name].split(",") if c.strip()]
        return msgspec.convert(values, cls, strict=False)

    def delivery_channels(self) -> tuple[str, ...]:
        """The channels a ``zsched`` process can deliver through: websocket, and webhook when configured."""
        return ("websocket", "webhook") if self.webhook_url else ("websocket",)

    def core(self) -> Core:
        """The core these settings describe."""
        return Core(
            Keyspace(self.prefix, self.partitions),
            retry=RetryPolicy(delays_ms=self.retry_delays_ms),
            retention=Retention(self.keep_sent_ms, self.keep_cancelled_ms, self.keep_failed_ms),
        )

    def server(self) -> EmbeddedServer | None:
        """The embedded server to use (attached or started) when no Redis URL is configured."""
        return None if self.redis_url else EmbeddedServer(Path(self.data_dir)).start()

    def url(self, server: EmbeddedServer | None) -> str:
        """The Redis URL to connect to."""
        return server.url if server is not None else str(self.redis_url)

    def scheduler(self) -> Scheduler:
        """A sync scheduler on the configured Redis (the embedded one by default)."""
        server = self.server()
        return Scheduler(redis.Redis.from_url(self.url(server)), core=self.core(), server=server)

    def async_scheduler(self) -> AsyncScheduler:
        """An asyncio scheduler on the configured Redis (the embedded one by default)."""
        server = self.server()
        return AsyncScheduler(aioredis.Redis.from_url(self.url(server)), core=self.core(), server=server)
