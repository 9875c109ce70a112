"""How a due notification leaves zsched. A delivery takes a batch and reports, per notification,
``None`` (delivered) or the exception that stopped it (the worker then retries with backoff).

``InboxDelivery`` is the default: it appends each notification to its recipient's inbox stream and
PUBLISHes it on the recipient's channel, in one script call per partition. PUBLISH alone would drop a
message nobody listens to; the stream keeps it for a client that connects later.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from .keys import Keyspace
from .models import Delivered, Notification, json_encoder
from .scripts import Scripts

Outcome = BaseException | None


class Delivery(Protocol):
    """Delivers a batch; returns one outcome per notification, in order."""

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]: ...


class InboxDelivery:
    """Inbox stream + PUBLISH on the recipient's channel: what the WebSocket gateway listens to."""

    def __init__(self, connection: Any, keyspace: Keyspace, *, inbox_maxlen: int = 1000) -> None:
        self.redis = connection
        self.keys = keyspace
        self.inbox_maxlen = inbox_maxlen
        self.script = Scripts(connection)["publish_inbox"]

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]:
        """One publish_inbox call per partition in the batch; a failed call fails its partition's share."""
        sent_at = datetime.now(UTC)
        groups: dict[int, list[int]] = {}
        for position, n in enumerate(batch):
            groups.setdefault(self.keys.for_recipient(n.recipient).index, []).append(position)
        outcomes: list[Outcome] = [None] * len(batch)
        for index, positions in groups.items():
            p = self.keys.partitions[index]
            keys: list[str] = []
            args: list[str | int] = [self.inbox_maxlen]
            for position in positions:
                n = batch[position]
                keys.append(p.inbox(n.recipient))
                args += [p.user_channel(n.recipient), json_encoder.encode(Delivered.of(n, sent_at)).decode()]
            try:
                await self.script(keys=keys, args=args, client=self.redis)
            except Exception as exc:
                for position in positions:
                    outcomes[position] = exc
        return outcomes


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
