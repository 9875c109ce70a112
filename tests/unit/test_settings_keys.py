from __future__ import annotations

import re

import msgspec
import pytest

from zsched.engine.keys import Keyspace
from zsched.settings import FIELDS, SECTIONS, Settings, SettingsError, env_name, parse_duration_ms


@pytest.mark.parametrize(
    ("text", "ms"), [("500ms", 500), ("2s", 2000), ("1h30m", 5_400_000), ("7d", 604_800_000), ("1.5", 1500)]
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


def test_bad_duration_says_what_works() -> None:
    with pytest.raises(ValueError, match="write e.g. 500ms"):
        parse_duration_ms("soon")


def test_settings_from_env_then_flags() -> None:
    s = Settings.from_env(
        {"ZSCHED_PREFIX": "app", "ZSCHED_PARTITIONS": "4", "ZSCHED_RETRY_DELAYS_MS": "1s,2s"}, partitions=8
    )
    assert (s.redis.prefix, s.redis.partitions, s.engine.retry_delays_ms) == ("app", 8, (1000, 2000))
    assert s.core().retry.max_attempts == 3


def test_every_setting_has_one_variable_and_one_default() -> None:
    names = [name for section in SECTIONS.values() for name in msgspec.structs.fields(section)]
    assert len({f.name for f in names}) == len(names)  # a variable names one field
    defaults = Settings()
    for f in names:
        section, _ = FIELDS[f.name]
        assert getattr(getattr(defaults, section), f.name) == f.default or f.default_factory is not msgspec.NODEFAULT


@pytest.mark.parametrize(
    ("variable", "raw", "section", "name", "value"),
    [
        ("ZSCHED_LEASE_MS", "30s", "worker", "lease_ms", 30_000),
        ("ZSCHED_LEASE_MS", "2500", "worker", "lease_ms", 2_500),  # a bare number is in the name's unit
        ("ZSCHED_IDLE_S", "500ms", "worker", "idle_s", 0.5),
        ("ZSCHED_PURGE_EVERY_S", "5m", "worker", "purge_every_s", 300.0),
        ("ZSCHED_HEARTBEAT_S", "7", "gateway", "heartbeat_s", 7.0),
        ("ZSCHED_KEEP_SENT_MS", "30d", "engine", "keep_sent_ms", 30 * 86_400_000),
        ("ZSCHED_REAP_EVERY_S", "none", "worker", "reap_every_s", None),
        ("ZSCHED_IDLE_TIMEOUT_S", "1m", "gateway", "idle_timeout_s", 60.0),
        ("ZSCHED_CHANNELS", "websocket, webhook", "delivery", "channels", ("websocket", "webhook")),
        ("ZSCHED_INBOX_MAXLEN", "5000", "delivery", "inbox_maxlen", 5000),
        ("ZSCHED_POOL_SIZE", "20", "redis", "pool_size", 20),
        ("ZSCHED_SEND_QUEUE", "64", "gateway", "send_queue", 64),
        ("ZSCHED_STOP_TIMEOUT_S", "30s", "worker", "stop_timeout_s", 30.0),
    ],
)
def test_durations_take_units_everywhere(variable: str, raw: str, section: str, name: str, value: object) -> None:
    assert env_name(name) == variable
    assert getattr(getattr(Settings.from_env({variable: raw}), section), name) == value


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ZSCHED_LEASE_MS": "soon"}, "ZSCHED_LEASE_MS: not a duration: 'soon'"),
        ({"ZSCHED_BATCH": "many"}, "ZSCHED_BATCH: Expected `int`"),
        ({"ZSCHED_IDLE_S": "-1"}, "ZSCHED_IDLE_S: must not be negative"),
        ({"ZSCHED_RETRY_DELAYS_MS": "5m,later"}, "ZSCHED_RETRY_DELAYS_MS: not a duration: 'later'"),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env(env)


def test_a_flag_overrides_the_variable_and_is_named_when_bad() -> None:
    assert Settings.from_env({"ZSCHED_BATCH": "10"}, batch=20).worker.batch == 20
    with pytest.raises(SettingsError, match=re.escape("lease_ms (ZSCHED_LEASE_MS): not a duration")):
        Settings.from_env({}, lease_ms="forever")
    with pytest.raises(SettingsError, match="no setting named 'leese_ms'"):
        Settings.of(leese_ms=1)


def test_replace_routes_flat_names_to_their_section() -> None:
    s = Settings.of(prefix="a").replace(redis_url="redis://x:1/0", batch=7)
    assert (s.redis.prefix, s.redis.redis_url, s.worker.batch) == ("a", "redis://x:1/0", 7)


def test_keys_read_like_documentation_and_share_a_tag() -> None:
    ks = Keyspace("zsched", partitions=3)
    p = ks.for_id(7)
    assert p.index == 1 and p.due == "zsched:{p1}:due" and p.inbox("alice") == "zsched:{p1}:inbox:alice"
    assert ks.for_recipient("alice") is ks.for_recipient("alice")
    assert len({ks.for_recipient(f"user{i}").index for i in range(100)}) == 3


def test_keyspace_rejects_bad_prefix() -> None:
    with pytest.raises(ValueError, match="no braces"):
        Keyspace("a{b}")


def test_gateway_settings_are_the_gateways_keywords_with_the_same_defaults() -> None:
    """The app passes ``settings.gateway`` as keywords; a field that is not one, or a default that drifted, fails."""
    import inspect

    from zsched.settings import GatewaySettings
    from zsched.web.gateway import Gateway

    parameters = inspect.signature(Gateway).parameters
    for field in msgspec.structs.fields(GatewaySettings):
        assert field.name in parameters, field.name
        default = parameters[field.name].default
        assert (tuple(default) if isinstance(default, list | tuple) else default) == field.default, field.name
