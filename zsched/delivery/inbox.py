"""The websocket channel: each due notification is appended to its recipient's inbox stream and
PUBLISHed on the recipient's channel, in one script call per partition. PUBLISH alone would drop a
message nobody listens to; the stream keeps it for a client that connects later. The WebSocket gateway
(``zsched.web.gateway``) listens to both.

An inbox is bounded three ways, all inside the script: entries older than ``keep_ms`` (the sent records'
retention) are trimmed, at most about ``inbox_maxlen`` are kept, and the stream expires ``keep_ms`` after its
last append, so a recipient who stops receiving leaves nothing behind.

A worker whose websocket channel is this one does not pass it the notifications that go to the websocket alone:
its claim script appends, publishes and marks them sent in the same call (``claim_plan``), with no Python per
notification. This class delivers the rest (several channels, and a record the claim left to Python).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from ..connection import is_cluster
from ..engine.base import OP_TTL_MS, Retention, new_op_id
from ..engine.keys import Keyspace
from ..engine.leases import InboxPlan
from ..engine.scripts import Scripts
from ..models import Delivered, Notification, json_encoder
from .channel import Delivery, Outcome
from .router import Router


class InboxDelivery:
    """Inbox stream + PUBLISH on the recipient's channel: what the WebSocket gateway listens to. With ``in_claim``
    (the default), a worker's claim delivers the websocket-only notifications itself (``claim_plan``)."""

    def __init__(
        self,
        connection: Any,
        keyspace: Keyspace,
        *,
        inbox_maxlen: int = 1000,
        keep_ms: int = Retention().sent_ms,
        clock: Callable[[], int] | None = None,
        op_ttl_ms: int = OP_TTL_MS,
        in_claim: bool = True,
    ) -> None:
        if inbox_maxlen < 1 or keep_ms < 1:
            raise ValueError(f"inbox_maxlen and keep_ms must be >= 1; got {inbox_maxlen} and {keep_ms}")
        self.redis = connection
        self.keys = keyspace
        self.inbox_maxlen = inbox_maxlen
        self.keep_ms = keep_ms
        self.clock = clock  # None: the server's TIME decides what is older than keep_ms
        self.op_ttl_ms = op_ttl_ms
        self.in_claim = in_claim  # False: every notification comes through deliver (publish_inbox, then ack)
        self.sharded = is_cluster(connection)  # a cluster's gateways SSUBSCRIBE: publish with SPUBLISH there
        self.script = Scripts(connection)["publish_inbox"]

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]:
        """One publish_inbox call per partition in the batch; a failed call fails its partition's share.

        Each call carries an operation key made once, so a retry after a lost reply appends nothing twice."""
        sent_at = datetime.now(UTC)
        groups: dict[int, list[int]] = {}
        for position, n in enumerate(batch):
            groups.setdefault(self.keys.for_recipient(n.recipient).index, []).append(position)
        outcomes: list[Outcome] = [None] * len(batch)
        for index, positions in groups.items():
            p = self.keys.partitions[index]
            keys: list[str] = [p.op(new_op_id())]
            args: list[str | int] = [
                self.inbox_maxlen,
                self.keep_ms,
                "" if self.clock is None else self.clock(),
                self.op_ttl_ms,
                "SPUBLISH" if self.sharded else "PUBLISH",
            ]
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


def claim_plan(delivery: Delivery) -> InboxPlan | None:
    """How a worker delivering through ``delivery`` has its claim deliver websocket-only notifications itself, or
    None when it cannot: the websocket must be an ``InboxDelivery`` that allows it (``in_claim``), the delivery
    itself or a ``Router``'s ``websocket`` channel. Through a router whose default channels are the websocket
    alone, notifications naming no channel go too; otherwise only those naming ``["websocket"]`` (a bare
    ``InboxDelivery`` takes every notification, whatever it names). The claim's clock (the core's) times the
    inbox's trims."""
    inbox: Delivery | None = delivery
    unnamed = True
    if isinstance(delivery, Router):
        inbox, unnamed = delivery.channels.get("websocket"), delivery.default == ("websocket",)
    if not isinstance(inbox, InboxDelivery) or not inbox.in_claim:
        return None
    return InboxPlan(inbox.inbox_maxlen, inbox.keep_ms, unnamed, inbox.sharded)
