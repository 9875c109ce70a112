"""The webhook channel: an HTTP POST of the notification JSON, signed the Standard Webhooks way, under a timeout.

Each request carries ``webhook-id`` (the notification id, the same on every retry), ``webhook-timestamp``
(epoch seconds) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, so a
receiver verifies it with any Standard Webhooks library (standardwebhooks.com). The secret is a
``whsec_<base64>`` string, whose base64 part is the key, or any other string, whose UTF-8 bytes are the key.
Receivers deduplicate by ``webhook-id``: delivery is at least once.

The 0.1 headers (``X-Zsched-Id``, ``X-Zsched-Attempt``, ``X-Zsched-Timestamp``, ``X-Zsched-Signature``, checked
by ``verify_signature``) are still sent in 0.2 and dropped in 0.3.

A webhook URL is often a bearer secret (Slack and Teams URLs are), so a failure names only the origin
(``https://hooks.example.com``): its message's first line becomes the stored ``last_error`` the creator
sees; what the receiver answered follows on later lines, which ``lua/retry.lua`` stores apart as
``last_error_detail``, shown only to admins and never logged.

During a secret rotation each request is signed with the current and the previous secret: ``webhook-signature``
then carries ``v1,<current> v1,<previous>`` (space-separated, as the spec says), and a receiver accepts it when
any one of them matches (``X-Zsched-Signature``: ``sha256=<current>, sha256=<previous>``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from ..errors import ConfigError, WebhookError
from ..models import Delivered, Notification, json_encoder
from .channel import Outcome

SIGNATURE_HEADER = "X-Zsched-Signature"
"""Deprecated: the 0.1 signature header, sent until 0.3; ``webhook-signature`` replaces it."""
TIMESTAMP_HEADER = "X-Zsched-Timestamp"
"""Deprecated: the 0.1 timestamp header, sent until 0.3; ``webhook-timestamp`` replaces it."""
SECRET_PREFIX = "whsec_"


def signing_key(secret: str | bytes) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64 after ``whsec_``, else the secret's own bytes."""
    if isinstance(secret, bytes):
        return secret
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode()
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise ConfigError(f"a {SECRET_PREFIX} webhook secret must be base64 after the prefix; it is not") from None
    if not key:
        raise ConfigError(f"a {SECRET_PREFIX} webhook secret needs a key after the prefix; got none")
    return key


def sign_v1(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """One Standard Webhooks signature: ``v1,`` + base64 HMAC-SHA256 of ``"<id>.<timestamp>." + body``."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Deprecated (until 0.3): an ``X-Zsched-Signature`` value, ``sha256=`` + hex HMAC-SHA256 of
    ``"<timestamp>." + body``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str, body: bytes, timestamp: str, signature: str, *, tolerance_s: float = 300.0, now_s: float | None = None
) -> bool:
    """Deprecated (until 0.3): whether ``X-Zsched-Timestamp`` is recent and one of ``X-Zsched-Signature``'s
    comma-separated signatures (two during a secret rotation) is ``secret``'s."""
    try:
        age_s = abs((time.time() if now_s is None else now_s) - int(timestamp))
    except ValueError:
        return False
    expected = sign(secret, timestamp, body).encode()
    # Every candidate is compared (no early exit), so timing does not tell which one matched.
    matches = [hmac.compare_digest(expected, part.strip().encode()) for part in signature.split(",")]
    return age_s <= tolerance_s and any(matches)


def origin(url: str) -> str:
    """A URL without its path, query and credentials (``https://hooks.example.com:8443``): safe to show."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


class OriginsOnly(logging.Filter):
    """Cuts every URL in a log record down to its origin: httpx logs each request's full URL at INFO, and a
    Slack- or Teams-style webhook URL is a bearer secret in its path and query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_URL.sub(r"\1\2", str(a)) if isinstance(a, str | httpx.URL) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = _URL.sub(r"\1\2", record.msg)
        return True


_URL = re.compile(r"(https?://)(?:[^/\s?#@\"']*@)?([^/\s?#\"']+)[^\s\"']*")


def _quiet_httpx_urls() -> None:
    """Install ``OriginsOnly`` on httpx's logger, once."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, OriginsOnly) for f in logger.filters):
        logger.addFilter(OriginsOnly())


class WebhookChannel:
    """POSTs each notification's JSON to ``url``; a non-2xx answer or a timeout fails that notification."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        previous_secret: str | None = None,
        timeout_s: float = 10.0,
        concurrency: int = 16,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"webhook url must start with http:// or https://; got {url!r}")
        if not secret:
            raise ConfigError("a webhook needs a signing secret (ZSCHED_WEBHOOK_SECRET); got an empty one")
        self.url = url
        self.origin = origin(url)
        self.secret = secret
        self.previous_secret = previous_secret or None
        self._keys = [signing_key(s) for s in (secret, self.previous_secret) if s is not None]  # checked here
        self.timeout_s = timeout_s
        self._limit = asyncio.Semaphore(concurrency)
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None
        _quiet_httpx_urls()

    async def _post(self, n: Notification, sent_at: datetime) -> None:
        body = json_encoder.encode(Delivered.of(n, sent_at))
        timestamp = str(int(time.time()))
        msg_id = str(n.id)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": " ".join(sign_v1(key, msg_id, timestamp, body) for key in self._keys),
            "X-Zsched-Id": msg_id,
            "X-Zsched-Attempt": str(n.attempts),
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: self.signature(timestamp, body),
        }
        # timeout_s is a total per POST (connect, send, the whole answer): httpx's own timeout is per phase, so
        # a receiver trickling its answer never tripped it. It starts once a slot is free, not while queued:
        # a queued POST has not been tried, and the worker renews the batch's lease meanwhile.
        async with self._limit:
            try:
                async with asyncio.timeout(self.timeout_s):
                    answer = await self._client.post(self.url, content=body, headers=headers, timeout=self.timeout_s)
            except (TimeoutError, httpx.TimeoutException) as exc:
                raise WebhookError(f"webhook {self.origin} did not answer within {self.timeout_s} s") from exc
            except httpx.HTTPError as exc:  # connect, TLS, protocol: the type is safe to show, its text may not be
                raise WebhookError(
                    f"webhook {self.origin} could not be reached ({type(exc).__name__})\n{self._scrub(str(exc))[:200]}"
                ) from exc
        if not 200 <= answer.status_code < 300:
            raise WebhookError(
                f"webhook {self.origin} answered {answer.status_code}; expected 2xx\n"
                f"response body: {self._scrub(answer.text[:200])!r}"
            )

    def signature(self, timestamp: str, body: bytes) -> str:
        """Deprecated (until 0.3): the ``X-Zsched-Signature`` header, the current secret's signature, then the
        previous secret's during a rotation."""
        current = sign(self.secret, timestamp, body)
        return current if self.previous_secret is None else f"{current}, {sign(self.previous_secret, timestamp, body)}"

    def _scrub(self, text: str) -> str:
        """``text`` with the full URL replaced by its origin: a receiver may echo its own URL."""
        return text.replace(self.url, self.origin)

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]:
        """POST every notification concurrently (at most ``concurrency`` at once); collect failures."""
        sent_at = datetime.now(UTC)
        results = await asyncio.gather(*(self._post(n, sent_at) for n in batch), return_exceptions=True)
        return [r if isinstance(r, BaseException) else None for r in results]

    async def aclose(self) -> None:
        """Close the HTTP client this channel created."""
        if self._owns_client:
            await self._client.aclose()
