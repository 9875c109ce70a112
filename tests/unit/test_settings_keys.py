from __future__ import annotations

import pytest

from zsched.engine.keys import Keyspace
from zsched.settings import Settings, parse_duration_ms


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
    assert (s.prefix, s.partitions, s.retry_delays_ms) == ("app", 8, (1000, 2000))
    assert s.core().retry.max_attempts == 3


def test_keys_read_like_documentation_and_share_a_tag() -> None:
    ks = Keyspace("zsched", partitions=3)
    p = ks.for_id(7)
    assert p.index == 1 and p.due == "zsched:{p1}:due" and p.inbox("alice") == "zsched:{p1}:inbox:alice"
    assert ks.for_recipient("alice") is ks.for_recipient("alice")
    assert len({ks.for_recipient(f"user{i}").index for i in range(100)}) == 3


def test_keyspace_rejects_bad_prefix() -> None:
    with pytest.raises(ValueError, match="no braces"):
        Keyspace("a{b}")
