"""A Python function as a channel: called once per notification, sync or async, under a timeout."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence

from ..models import Notification
from .channel import Outcome


class CallableDelivery:
    """Calls a function (sync or async) once per notification, concurrently; an exception is a failure."""

    def __init__(self, fn: Callable[[Notification], Awaitable[object] | object], *, timeout_s: float = 30.0) -> None:
        self.fn = fn
        self.timeout_s = timeout_s

    async def _one(self, n: Notification) -> None:
        result = self.fn(n)
        if inspect.isawaitable(result):
            await asyncio.wait_for(result, self.timeout_s)

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]:
        """Run the function for every notification; collect what each raised."""
        results = await asyncio.gather(*(self._one(n) for n in batch), return_exceptions=True)
        return [r if isinstance(r, BaseException) else None for r in results]
