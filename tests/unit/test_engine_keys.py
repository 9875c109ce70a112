"""Configuration mistakes are typed errors: ConfigError, a ValidationError (so still a ValueError)."""

from __future__ import annotations

from typing import Any

import pytest

from zsched import Keyspace, RetryPolicy
from zsched.errors import ConfigError, ValidationError


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"partitions": 0}, "partitions"), ({"prefix": ""}, "prefix"), ({"prefix": "a{b"}, "prefix")]
)
def test_a_bad_keyspace_is_a_config_error_naming_the_setting(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Keyspace(**kwargs)
    assert caught.value.field == field
    assert isinstance(caught.value, ValidationError) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize("kwargs", [{"delays_ms": (-1,)}, {"jitter": 2.0}, {"factor": 0.5}])
def test_a_bad_retry_policy_is_a_config_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)
