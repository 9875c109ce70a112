"""The router: sends each notification through the channels it names, or the default ones.

    websocket   the inbox stream + PUBLISH that the WebSocket gateway forwards (``InboxDelivery``)
    webhook     an HTTP POST of the notification JSON, signed with HMAC-SHA256, under a timeout
    <any name>  a Python callable (sync or async) or ``Delivery`` registered with ``Router.register``

A notification names its channels (``channels=["webhook"]`` when scheduled); one that names none uses
the router's default. It counts as delivered when every channel it names succeeded; otherwise the worker
retries it through the channels that failed only (``ChannelsFailed`` names the ones that succeeded, which
the state records as ``done``). Delivery is still at least once, so receivers deduplicate by notification
id, sent in every message and in the ``X-Zsched-Id`` header.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from ..errors import ConfigError, FieldError, UnknownChannelError
from ..models import Notification
from .callables import CallableDelivery
from .channel import ChannelsFailed, Delivery, Outcome


class Router:
    """Sends each notification through the channels it names, or the default ones; one Delivery."""

    def __init__(self, channels: Mapping[str, Delivery] | None = None, *, default: Sequence[str] = ("websocket",)):
        if not default:
            raise ConfigError(
                "the default channels cannot be empty; name at least one, e.g. ('websocket',)", "channels"
            )
        self.channels: dict[str, Delivery] = dict(channels or {})
        self.default = tuple(default)

    @property
    def names(self) -> tuple[str, ...]:
        """The channels this router delivers through: what notifications may name."""
        return tuple(self.channels)

    @staticmethod
    def check_name(name: str) -> None:
        """Channel names are letters, digits, '-' and '_' (they appear in URLs, logs and keys)."""
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise FieldError(f"channel names are letters, digits, '-' and '_'; got {name!r}", "channels")

    def register(self, name: str, channel: Delivery | Callable[[Notification], Awaitable[object] | object]) -> None:
        """Add a channel under ``name``: a Delivery, or a function called once per notification."""
        self.check_name(name)
        self.channels[name] = channel if hasattr(channel, "deliver") else CallableDelivery(channel)

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]:
        """Group the batch by channel, deliver the groups concurrently, fail a notification if any channel did.

        A notification with several channels skips those an earlier attempt delivered (``n.done``), and its
        failure is a ``ChannelsFailed`` naming each channel's outcome; one with a single channel costs nothing more.
        """
        outcomes: list[Outcome] = [None] * len(batch)
        several: dict[int, dict[str, BaseException | None]] = {}  # position -> channel -> outcome
        groups: dict[str, list[int]] = {}
        for position, n in enumerate(batch):
            names = n.channels or self.default
            if len(names) > 1:
                several[position] = {}
            for name in names:
                if n.done and name in n.done:
                    continue
                if name in self.channels:
                    groups.setdefault(name, []).append(position)
                    continue
                unknown = UnknownChannelError(
                    f"notification {n.id} names channel {name!r}, which is not registered; "
                    f"registered: {', '.join(sorted(self.channels)) or 'none'}"
                )
                if position in several:
                    several[position][name] = unknown
                elif outcomes[position] is None:
                    outcomes[position] = unknown
        names = list(groups)
        results = await asyncio.gather(*(self._through(name, [batch[i] for i in groups[name]]) for name in names))
        for name, result in zip(names, results, strict=True):
            for position, outcome in zip(groups[name], result, strict=True):
                if position in several:
                    several[position][name] = outcome
                elif outcome is not None and outcomes[position] is None:
                    outcomes[position] = outcome
        for position, by_name in several.items():
            errors = {name: error for name, error in by_name.items() if error is not None}
            if errors:
                outcomes[position] = ChannelsFailed([name for name, e in by_name.items() if e is None], errors)
        return outcomes

    async def _through(self, name: str, batch: list[Notification]) -> list[Outcome]:
        try:
            outcomes = await self.channels[name].deliver(batch)
        except Exception as exc:  # a channel that raises fails its whole share of the batch
            return [exc] * len(batch)
        if len(outcomes) != len(batch):
            error = RuntimeError(f"channel {name!r} returned {len(outcomes)} outcomes for {len(batch)} notifications")
            return [error] * len(batch)
        return outcomes

    async def aclose(self) -> None:
        """Close every channel that holds resources (HTTP clients)."""
        for channel in self.channels.values():
            close: Any = getattr(channel, "aclose", None)
            if close is not None:
                await close()
