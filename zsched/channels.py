"""Delivery channels: the ways a due notification leaves zsched, and the router that picks them.

    websocket   the inbox stream + PUBLISH that the WebSocket gateway forwards (``InboxDelivery``)
    webhook     an HTTP POST of the notification JSON, signed with HMAC-SHA256, under a timeout
    <any name>  a Python callable (sync or async) or ``Delivery`` registered with ``Router.register``

A notification names its channels (``channels=["webhook"]`` when scheduled); one that names none uses
the router's default. It counts as delivered when every channel it names succeeded; otherwise the worker
retries it (through all of its channels again: delivery is at least once, so receivers deduplicate
by notification id, sent in every message and in the ``X-Zsched-Id`` header).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from .delivery import CallableDelivery, Delivery, InboxDelivery, Outcome
from .keys import Keyspace
from .models import Delivered, Notification, json_encoder
from .settings import Settings

SIGNATURE_HEADER = "X-Zsched-Signature"
TIMESTAMP_HEADER = "X-Zsched-Timestamp"


class WebhookError(Exception):
    """A webhook answered with a non-2xx status, or did not answer in time."""


class UnknownChannelError(Exception):
    """A notification names a channel nobody registered."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value: ``sha256=`` + hex HMAC-SHA256 of ``"<timestamp>." + body``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, body: bytes, timestamp: str, signature: str, *,
                     tolerance_s: float = 300.0, now_s: float | None = None) -> bool:
    """Whether a received webhook is genuine: the signature matches and the timestamp is recent."""
    try:
        age_s = abs((time.time() if now_s is None else now_s) - int(timestamp))
    except ValueError:
        return False
    return age_s <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookChannel:
    """POSTs each notification's JSON to ``url``; a non-2xx answer or a timeout fails that notification."""

    def __init__(self, url: str, secret: str, *, timeout_s: float = 10.0, concurrency: int = 16,
                 client: httpx.AsyncClient | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must start with http:// or https://; got {url!r}")
        if not secret:
            raise ValueError("a webhook needs a signing secret (ZSCHED_WEBHOOK_SECRET); got an empty one")
        self.url = url
        self.secret = secret
        self.timeout_s = timeout_s
        self._limit = asyncio.Semaphore(concurrency)
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None

    async def _post(self, n: Notification, sent_at: datetime) -> None:
        body = json_encoder.encode(Delivered.of(n, sent_at))
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Zsched-Id": str(n.id), "X-Zsched-Attempt": str(n.attempts),
                   TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(self.secret, timestamp, body)}
        async with self._limit:
            try:
                answer = await self._client.post(self.url, content=body, headers=headers, timeout=self.timeout_s)
            except httpx.TimeoutException as exc:
                raise WebhookError(f"webhook {self.url} did not answer within {self.timeout_s} s ({exc!r})") from exc
        if not 200 <= answer.status_code < 300:
            raise WebhookError(f"webhook {self.url} answered {answer.status_code}; expected 2xx: "
                               f"{answer.text[:200]!r}")

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]:
        """POST every notification concurrently (at most ``concurrency`` at once); collect failures."""
        sent_at = datetime.now(UTC)
        results = await asyncio.gather(*(self._post(n, sent_at) for n in batch), return_exceptions=True)
        return [r if isinstance(r, BaseException) else None for r in results]

    async def aclose(self) -> None:
        """Close the HTTP client this channel created."""
        if self._owns_client:
            await self._client.aclose()


class Router:
    """Sends each notification through the channels it names, or the default ones; one Delivery."""

    def __init__(self, channels: Mapping[str, Delivery] | None = None, *, default: Sequence[str] = ("websocket",)):
        if not default:
            raise ValueError("the default channels cannot be empty; name at least one, e.g. ('websocket',)")
        self.channels: dict[str, Delivery] = dict(channels or {})
        self.default = tuple(default)

    def register(self, name: str, channel: Delivery | Callable[[Notification], Awaitable[object] | object]) -> None:
        """Add a channel under ``name``: a Delivery, or a function called once per notification."""
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"channel names are letters, digits, '-' and '_'; got {name!r}")
        self.channels[name] = channel if hasattr(channel, "deliver") else CallableDelivery(channel)

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]:
        """Group the batch by channel, deliver the groups concurrently, fail a notification if any channel did."""
        outcomes: list[Outcome] = [None] * len(batch)
        groups: dict[str, list[int]] = {}
        for position, n in enumerate(batch):
            for name in n.channels or self.default:
                if name in self.channels:
                    groups.setdefault(name, []).append(position)
                elif outcomes[position] is None:
                    outcomes[position] = UnknownChannelError(
                        f"notification {n.id} names channel {name!r}, which is not registered; "
                        f"registered: {', '.join(sorted(self.channels)) or 'none'}")
        names = list(groups)
        results = await asyncio.gather(*(self._through(name, [batch[i] for i in groups[name]]) for name in names))
        for name, result in zip(names, results, strict=True):
            for position, outcome in zip(groups[name], result, strict=True):
                if outcome is not None and outcomes[position] is None:
                    outcomes[position] = outcome
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


def router_from_settings(settings: Settings, connection: Any, keyspace: Keyspace) -> Router:
    """The router a ``zsched`` process uses: websocket always, webhook when a URL is configured."""
    router = Router({"websocket": InboxDelivery(connection, keyspace)}, default=settings.channels)
    if settings.webhook_url:
        router.register("webhook", WebhookChannel(settings.webhook_url, settings.webhook_secret or "",
                                                  timeout_s=settings.webhook_timeout_s))
    missing = [name for name in settings.channels if name not in router.channels]
    if missing:
        raise ValueError(f"default channels {missing} are not configured; set ZSCHED_WEBHOOK_URL and "
                         "ZSCHED_WEBHOOK_SECRET for 'webhook', or register a callable through the library")
    return router
