"""Settings: every tunable of a zsched process, one nested Struct per subsystem, each default written once.

Each field has one environment variable, ``ZSCHED_`` + its name in capitals (``lease_ms`` ->
``ZSCHED_LEASE_MS``); names are unique across sections, so a variable names one field. A duration's name
ends with its unit (``_ms``, ``_s``): a bare number is in that unit, and any duration also takes units
(``ZSCHED_LEASE_MS=30s``, ``ZSCHED_RETRY_DELAYS_MS=5m,10m,20m``). A bad value is an error naming the variable.
Command-line flags override variables, which override the defaults.
"""

from __future__ import annotations

import os
import re
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import msgspec

from .client import AsyncScheduler, Scheduler
from .connection import RETRIES, Topology, cluster_enabled, connect, connection_options, is_cluster
from .embedded import DEFAULT_DATA_DIR, EmbeddedServer
from .engine.backoff import RetryPolicy
from .engine.base import MAX_DEAD, OP_TTL_MS
from .engine.core import DAY_MS, Core, Retention
from .engine.keys import Keyspace
from .engine.shaping import RecipientLimit, limits_arg
from .engine.validation import DEFAULT_DIGEST_MAX, DEFAULT_DIGEST_WINDOW_MS
from .errors import ConfigError, ValidationError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS}
_URL_PASSWORD = re.compile(r"(://[^:@/]*:)[^@/]*@")


class SettingsError(ConfigError):
    """A setting's value cannot be used; the message names the variable or flag."""


def parse_duration_ms(text: str, bare_unit: str = "s") -> int:
    """``"500ms"``, ``"2s"``, ``"1h30m"``, ``"7d"`` as milliseconds; a bare number is in ``bare_unit``."""
    text = text.strip().lower()
    try:
        return round(float(text) * _UNIT_MS[bare_unit])
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}; write e.g. 500ms, 2s, 5m, 1h30m or 7d")
    return round(sum(float(n) * _UNIT_MS[u] for n, u in parts))


class RedisSettings(msgspec.Struct, kw_only=True, frozen=True):
    """Where the data lives and how this process connects to it."""

    redis_url: str | None = None  # None: the embedded valkey-server in data_dir (unless nodes or sentinels are set)
    redis_cluster: Topology = "auto"  # auto: a cluster when the server says so (INFO cluster); yes; no
    redis_nodes: tuple[str, ...] = ()  # a Redis Cluster's seed nodes, host:port; credentials from redis_url
    redis_sentinels: tuple[str, ...] = ()  # Sentinel hosts, host:port: their master is used
    redis_sentinel_service: str = "mymaster"  # the master's name in Sentinel
    data_dir: str = str(DEFAULT_DATA_DIR)
    prefix: str = "zsched"
    partitions: int = 1
    partition_tags: Literal["auto", "plain", "spread"] = "auto"  # auto: spread over slots on a cluster
    pool_size: int = 100  # connections one serve process holds at most (API, acks, worker, pub/sub)
    socket_timeout_s: float = 5.0
    connect_timeout_s: float = 2.0


class EngineSettings(msgspec.Struct, kw_only=True, frozen=True):
    """Retry policy and how long records are kept."""

    retry_delays_ms: tuple[int, ...] = (300_000, 600_000, 1_200_000)
    keep_sent_ms: int = 90 * DAY_MS
    keep_cancelled_ms: int = 30 * DAY_MS
    keep_failed_ms: int = 90 * DAY_MS
    max_dead: int = MAX_DEAD  # dead letters kept per partition; a failure past it drops the oldest; 0: no cap
    idempotency_ttl_ms: int = DAY_MS
    max_pending_per_creator: int = 100_000  # pending + processing per creator, across partitions; 0: no cap
    max_call_bytes: int = 64 * 1024 * 1024  # payload bytes x recipients one schedule call may store
    op_ttl_ms: int = OP_TTL_MS  # how long a script call's outcome answers its retries; above the retry window
    digest_window_ms: int = DEFAULT_DIGEST_WINDOW_MS  # a digest's window when its first member names none
    digest_max: int = DEFAULT_DIGEST_MAX  # most members of one digest when its first member names none


class WorkerSettings(msgspec.Struct, kw_only=True, frozen=True):
    """The claim -> deliver -> ack loop."""

    batch: int = 100
    lease_ms: int = 30_000
    idle_s: float = 5.0  # an idle worker claims once per idle_s (a wakeup cuts it short)
    reap_every_s: float | None = None  # None: half a lease, at most 5 s
    purge_every_s: float = 60.0
    purge_batch: int = 500  # most records one purge call removes (fewer when that would hold the server > 1 ms)
    stop_timeout_s: float = 10.0  # how long shutdown waits for the batch in flight
    beat_every_s: float = 5.0  # how often every worker and gateway writes its heartbeat (late after three missed)
    owner_lease_ms: int | None = None  # a partition's owner lease; None: the claim lease, at most 5 s; 0: no owners
    recipient_limits: tuple[str, ...] = ()  # "<type>=<most>/<window>[:drop]", e.g. promo=3/1h: per recipient

    def limits(self) -> tuple[RecipientLimit, ...]:
        """``recipient_limits`` parsed: ``promo=3/1h`` allows 3 promo notifications per recipient per hour (those
        beyond wait for the next hour); ``promo=3/1h:drop`` ends those beyond ``throttled``."""
        out = []
        for item in self.recipient_limits:
            typ, _, rule = item.rpartition("=")
            most, _, window = rule.partition("/")
            window, _, over = window.partition(":")
            try:
                if over not in ("", "defer", "drop"):
                    raise ValueError(f"after ':' comes defer or drop; got {over!r}")
                out.append(
                    RecipientLimit(typ, int(most), parse_duration_ms(window), "drop" if over == "drop" else "defer")
                )
            except (ValueError, ConfigError, ValidationError) as exc:
                raise SettingsError(
                    f"{env_name('recipient_limits')}: write <type>=<most>/<window>[:drop], e.g. promo=3/1h; "
                    f"got {item!r} ({exc})",
                    "recipient_limits",
                ) from None
        try:
            limits_arg(out)  # one limit per type
        except ConfigError as exc:
            raise SettingsError(f"{env_name('recipient_limits')}: {exc}", "recipient_limits") from None
        return tuple(out)


class DeliverySettings(msgspec.Struct, kw_only=True, frozen=True):
    """The channels: which are used by default, and how the built-in ones behave."""

    channels: tuple[str, ...] = ("websocket",)  # for notifications that name none
    inbox_maxlen: int = 1000
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_previous_secret: str | None = None  # during a rotation: requests are signed with both
    webhook_timeout_s: float = 10.0
    webhook_concurrency: int = 16
    smtp_host: str | None = None  # set: the email channel is enabled
    smtp_port: int = 587
    smtp_username: str | None = None  # with smtp_password: log in after STARTTLS
    smtp_password: str | None = None
    smtp_starttls: bool = True  # upgrade the connection with STARTTLS before sending (refuse if it cannot)
    smtp_from: str | None = None  # the From address; required with smtp_host
    smtp_timeout_s: float = 10.0  # connect, and each message's whole exchange
    twilio_account_sid: str | None = None  # set: the sms channel is enabled (Twilio's Messages API)
    twilio_auth_token: str | None = None
    twilio_from: str | None = None  # an E.164 number, or a Messaging Service SID (MG...)
    twilio_url: str = "https://api.twilio.com"  # or another API of the same shape
    sms_timeout_s: float = 10.0  # each request's whole exchange
    sms_concurrency: int = 8  # requests at once


class ApiSettings(msgspec.Struct, kw_only=True, frozen=True):
    """The HTTP API's limits."""

    rate_per_s: float = 10.0
    rate_burst: int = 50
    auth_fail_per_s: float = 1.0  # failed authentications refilled per second, per client address
    auth_fail_burst: int = 20  # failed authentications one address may make at once


class GatewaySettings(msgspec.Struct, kw_only=True, frozen=True):
    """The WebSocket gateway."""

    allowed_origins: tuple[str, ...] = ()
    send_queue: int = 256
    heartbeat_s: float = 20.0
    idle_timeout_s: float | None = None
    backlog_limit: int = 100  # deprecated, unused: a connect replays every unacked inbox entry
    backlog_page: int = 200  # inbox entries a replay reads at once
    close_timeout_s: float = 2.0
    subscribe_timeout_s: float = 5.0
    send_timeout_s: float = 10.0  # how long one send of the backlog may wait for a client that stopped reading
    connects_per_s: float = 1.0  # WebSocket connects per token (each reads the inbox) ...
    connects_burst: int = 20  # ... and at once
    max_frame_bytes: int = 64 * 1024
    messages_per_s: float = 50.0  # client messages per socket ...
    messages_burst: int = 1000  # ... and at once
    max_ack_ids: int = 1000
    revoke_check_s: float = 0.5  # how soon a revoked token's open sockets are closed
    freeze_from_sockets: int = 1000  # from this many open sockets, freeze theirs out of full GCs (0: never)


SECTIONS: dict[str, Any] = {  # section name -> its Struct
    "redis": RedisSettings,
    "engine": EngineSettings,
    "worker": WorkerSettings,
    "delivery": DeliverySettings,
    "api": ApiSettings,
    "gateway": GatewaySettings,
}


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    """Everything a zsched process is configured by: ``Settings.from_env()`` or ``Settings.of(field=...)``."""

    redis: RedisSettings = msgspec.field(default_factory=RedisSettings)
    engine: EngineSettings = msgspec.field(default_factory=EngineSettings)
    worker: WorkerSettings = msgspec.field(default_factory=WorkerSettings)
    delivery: DeliverySettings = msgspec.field(default_factory=DeliverySettings)
    api: ApiSettings = msgspec.field(default_factory=ApiSettings)
    gateway: GatewaySettings = msgspec.field(default_factory=GatewaySettings)

    @classmethod
    def of(cls, **values: Any) -> Settings:
        """Defaults, then ``values`` by field name (``redis_url=...``, ``lease_ms=...``); no environment."""
        return cls.from_env({}, **values)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``ZSCHED_*`` variables, then non-None ``overrides`` by field name (command-line flags)."""
        env = os.environ if env is None else env
        unknown = set(overrides) - set(FIELDS)
        if unknown:
            raise SettingsError(f"no setting named {sorted(unknown)[0]!r}; settings are: {', '.join(sorted(FIELDS))}")
        sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        for name, (section, kind) in FIELDS.items():
            variable = env_name(name)
            raw, where = env.get(variable), variable
            if overrides.get(name) is not None:
                raw, where = overrides[name], f"{name} ({variable})"
            if raw is not None and raw != "":
                sections[section][name] = _parse(raw, kind, name, where)
        return cls(**{name: SECTIONS[name](**values) for name, values in sections.items()})

    def replace(self, **values: Any) -> Settings:
        """A copy with ``values`` by field name (``redis_url=...``) replaced; their types are checked."""
        sections: dict[str, Any] = {}
        for name, value in values.items():
            if name not in FIELDS:
                raise SettingsError(f"no setting named {name!r}; settings are: {', '.join(sorted(FIELDS))}")
            section, kind = FIELDS[name]
            current = sections.get(section, getattr(self, section))
            sections[section] = msgspec.structs.replace(current, **{name: _parse(value, kind, name, name)})
        return msgspec.structs.replace(self, **sections)

    # -- what the settings build -----------------------------------------------------------------

    def core(self, *, cluster: bool = False) -> Core:
        """The engine these settings describe; on a ``cluster``, ``partition_tags=auto`` spreads partitions."""
        e, r = self.engine, self.redis
        window_ms = round((RETRIES + 1) * (r.socket_timeout_s + r.connect_timeout_s) * 1000) + RETRIES * 1000
        if e.op_ttl_ms <= window_ms:
            raise SettingsError(
                f"{env_name('op_ttl_ms')} must outlast a call's retries ({RETRIES + 1} tries of up to "
                f"{r.connect_timeout_s:g} s to connect and {r.socket_timeout_s:g} s to answer, plus backoff: "
                f"{window_ms} ms); got {e.op_ttl_ms} ms",
                "op_ttl_ms",
            )
        tags = r.partition_tags if r.partition_tags != "auto" else "spread" if cluster else "plain"
        return Core(
            Keyspace(self.redis.prefix, self.redis.partitions, tags=tags),
            retry=RetryPolicy(delays_ms=e.retry_delays_ms),
            retention=Retention(e.keep_sent_ms, e.keep_cancelled_ms, e.keep_failed_ms, e.max_dead),
            idempotency_ttl_ms=e.idempotency_ttl_ms,
            max_pending_per_creator=e.max_pending_per_creator,
            max_call_bytes=e.max_call_bytes,
            op_ttl_ms=e.op_ttl_ms,
            digest_window_ms=e.digest_window_ms,
            digest_max=e.digest_max,
        )

    @property
    def external(self) -> bool:
        """Whether a Redis is configured (a URL, cluster nodes or sentinels), so no embedded server is used."""
        r = self.redis
        return bool(r.redis_url or r.redis_nodes or r.redis_sentinels)

    def server(self) -> EmbeddedServer | None:
        """The embedded server to use (attached or started) when no Redis is configured."""
        return None if self.external else EmbeddedServer(Path(self.redis.data_dir)).start()

    def url(self, server: EmbeddedServer | None) -> str:
        """The Redis URL to connect to (with nodes or sentinels alone: the first of them, for its address)."""
        if server is not None:
            return server.url
        r = self.redis
        return r.redis_url or f"redis://{(r.redis_nodes or r.redis_sentinels)[0]}"

    def where(self) -> str:
        """Where the configured Redis is, safe to print (no password)."""
        r = self.redis
        if r.redis_sentinels:
            return f"Sentinel {','.join(r.redis_sentinels)} (master {r.redis_sentinel_service!r})"
        if r.redis_nodes:
            return f"the Redis Cluster at {','.join(r.redis_nodes)}"
        return redact_url(str(r.redis_url))

    def clustered(self, server: EmbeddedServer | None = None) -> bool:
        """Whether the configured Redis is a cluster: seed nodes given, ``redis_cluster=yes``, or ``auto`` and the
        server at the URL says so (``INFO cluster``)."""
        r = self.redis
        if server is not None or r.redis_sentinels:
            return False
        if r.redis_nodes or r.redis_cluster == "yes":
            return True
        return r.redis_cluster == "auto" and cluster_enabled(self.url(None), connect_timeout_s=r.connect_timeout_s)

    def connect(
        self,
        server: EmbeddedServer | None = None,
        *,
        for_asyncio: bool = False,
        max_connections: int | None = None,
        cluster: bool | None = None,
    ) -> Any:
        """A redis-py client for the configured Redis: a single server, a cluster (``redis_cluster``,
        ``redis_nodes``; ``cluster`` when already known) or Sentinel's master (``redis_sentinels``), with this
        process's timeouts and retries."""
        r = self.redis
        cluster = self.clustered(server) if cluster is None else cluster
        return connect(
            self.url(server) if server is not None or r.redis_url else None,
            cluster="yes" if cluster else "no",
            nodes=r.redis_nodes if cluster else (),
            sentinels=() if server is not None else r.redis_sentinels,
            sentinel_service=r.redis_sentinel_service,
            for_asyncio=for_asyncio,
            max_connections=max_connections,
            socket_timeout_s=r.socket_timeout_s,
            connect_timeout_s=r.connect_timeout_s,
        )

    def connection_options(self, *, for_asyncio: bool = False) -> dict[str, Any]:
        """The redis-py options of this process's connections: ``socket_timeout_s``, ``connect_timeout_s``, and
        ``client.RETRIES`` resends with backoff (``client.connection_options``)."""
        r = self.redis
        return connection_options(
            socket_timeout_s=r.socket_timeout_s, connect_timeout_s=r.connect_timeout_s, for_asyncio=for_asyncio
        )

    def scheduler(self) -> Scheduler:
        """A sync scheduler on the configured Redis (the embedded one by default), with bounded timeouts."""
        self.core()  # a bad setting fails before a server starts
        server = self.server()
        connection = self.connect(server)
        return Scheduler(connection, core=self.core(cluster=is_cluster(connection)), server=server)

    def async_scheduler(self) -> AsyncScheduler:
        """An asyncio scheduler on the configured Redis (the embedded one by default), with bounded timeouts."""
        self.core()
        server = self.server()
        connection = self.connect(server, for_asyncio=True)
        return AsyncScheduler(connection, core=self.core(cluster=is_cluster(connection)), server=server)


def redact_url(url: str) -> str:
    """A Redis URL safe to print: its password, if any, as ``***``."""
    return _URL_PASSWORD.sub(r"\1***@", url)


def env_name(field: str) -> str:
    """The environment variable of a setting: ``lease_ms`` -> ``ZSCHED_LEASE_MS``."""
    return f"ZSCHED_{field.upper()}"


def _fields() -> dict[str, tuple[str, Any]]:
    """Every setting's name -> (its section, its type); names are unique across sections."""
    found: dict[str, tuple[str, Any]] = {}
    for section, struct in SECTIONS.items():
        for name, kind in get_type_hints(struct).items():
            if name in found:
                raise RuntimeError(f"setting {name!r} is in both {found[name][0]} and {section}")
            found[name] = (section, kind)
    return found


FIELDS = _fields()


def _parse(raw: Any, kind: Any, name: str, where: str) -> Any:
    """A raw value (text from the environment, or a flag's value) as ``kind``; an error names ``where``."""
    try:
        return _convert(raw, kind, name)
    except (ValueError, msgspec.ValidationError) as exc:
        raise SettingsError(f"{where}: {exc}", name) from None


def _convert(raw: Any, kind: Any, name: str) -> Any:
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, types.UnionType):  # X | None: empty, "none" or "null" is None
        if isinstance(raw, str) and raw.strip().lower() in ("", "none", "null"):
            return None
        return _convert(raw, next(a for a in args if a is not type(None)), name)
    if origin is tuple:
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        return tuple(_convert(i.strip() if isinstance(i, str) else i, args[0], name) for i in items if i != "")
    if isinstance(raw, str) and kind in (int, float) and name.endswith(("_ms", "_s")):
        ms = parse_duration_ms(raw, bare_unit="ms" if name.endswith("_ms") else "s")
        value = ms if name.endswith("_ms") else ms / 1000
    else:
        value = msgspec.convert(raw, kind, strict=False)
    if kind in (int, float) and value < 0:
        raise ValueError(f"must not be negative; got {raw!r}")
    return value
