"""What every delivery channel is: a batch in, one outcome per notification out.

``None`` means delivered; an exception is what stopped it (the worker then retries with backoff).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..models import Notification

Outcome = BaseException | None


class Delivery(Protocol):
    """Delivers a batch; returns one outcome per notification, in order."""

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]: ...
