"""What every delivery channel is: a batch in, one outcome per notification out.

``None`` means delivered; an exception is what stopped it: the worker retries it with backoff, unless it is a
``PermanentDeliveryError`` (no retry could deliver it), which fails the notification at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..errors import PermanentDeliveryError
from ..models import Notification

Outcome = BaseException | None


class ChannelsFailed(Exception):
    """The outcome of a notification sent through several channels when some failed: the channels that
    succeeded (a retry skips them) and each failed channel's error."""

    def __init__(self, sent: Sequence[str], errors: dict[str, BaseException]) -> None:
        self.sent = list(sent)
        self.errors = errors
        heads = [f"{name}: {first_line(exc)}" for name, exc in errors.items()]
        details = [rest for exc in errors.values() if (rest := str(exc).partition("\n")[2])]
        super().__init__("; ".join(heads) + "".join(f"\n{d}" for d in details))


def permanent(outcome: Outcome) -> bool:
    """Whether no retry can deliver it: a ``PermanentDeliveryError``, or several channels whose every failure is."""
    if isinstance(outcome, ChannelsFailed):
        return bool(outcome.errors) and all(isinstance(e, PermanentDeliveryError) for e in outcome.errors.values())
    return isinstance(outcome, PermanentDeliveryError)


def first_line(error: BaseException) -> str:
    """What an error says in one line (later lines, e.g. a webhook's answer, are for admins only)."""
    return str(error).partition("\n")[0] or type(error).__name__


class Delivery(Protocol):
    """Delivers a batch; returns one outcome per notification, in order."""

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]: ...
