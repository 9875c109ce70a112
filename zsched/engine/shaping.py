"""Delivery shaping: at most so many notifications of a type per window to one recipient.

This is apart from the HTTP API's request throttling (``web.ratelimit``): it shapes what reaches a recipient,
whoever scheduled it. The claim script counts and decides (a notification over its limit stays pending, due
again at the window's end, or ends ``throttled``), so every worker, and the claim's own inbox path, applies
the same limits; a recipient's notifications all live in one partition, so each count is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec

from ..errors import ConfigError
from . import validation


class RecipientLimit(msgspec.Struct, frozen=True):
    """At most ``most`` notifications of ``type`` to one recipient per ``window_ms`` (windows are whole
    multiples of ``window_ms`` since the epoch); those beyond wait, pending, until the window ends (``over``
    ``defer``), or end ``throttled`` and are not sent (``drop``)."""

    type: str
    most: int
    window_ms: int
    over: Literal["defer", "drop"] = "defer"

    def __post_init__(self) -> None:
        validation.notification_type(self.type)
        if self.most < 1:
            raise ConfigError(f"a recipient limit allows at least 1 per window; got {self.most} for {self.type!r}")
        if self.over not in ("defer", "drop"):
            raise ConfigError(f"a recipient limit's over is defer or drop; got {self.over!r} for {self.type!r}")
        if self.window_ms < 1000:
            raise ConfigError(f"a recipient limit's window is at least 1 s; got {self.window_ms} ms for {self.type!r}")


def limits_arg(limits: Sequence[RecipientLimit]) -> str:
    """The claim script's ARGV for ``limits``: '' for none, else JSON {type: [most, window_ms, over]}."""
    if not limits:
        return ""
    types = [limit.type for limit in limits]
    if len(set(types)) != len(types):
        dup = next(t for t in types if types.count(t) > 1)
        raise ConfigError(f"one recipient limit per type; got two for {dup!r}")
    return msgspec.json.encode({limit.type: [limit.most, limit.window_ms, limit.over] for limit in limits}).decode()
