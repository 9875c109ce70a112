"""The sms channel: each notification as a text message to the phone number in the recipient's contact data,
sent through an ``SmsProvider``; ``TwilioMessages`` is the one adapter, for Twilio's Messages API (and any API of
the same shape).

What a failure means, whatever the provider:

- the provider could not be reached or did not answer within ``timeout_s``, was rate limited (429), failing
  (5xx), or refused the credentials (401, 403: the settings, not the message): ``SmsError``, retried with the
  usual backoff (minutes: longer than a rate limit's ``Retry-After``);
- it refused the message (any other 4xx, e.g. not a valid number), or the recipient has no phone number:
  ``SmsRejectedError``, a ``PermanentDeliveryError``: the notification fails at once, with the status and the
  provider's error code in ``last_error``.

What the provider said follows on the error's next line, stored as ``last_error_detail``, which only admins are
shown: it often quotes the number, which is the recipient's personal data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

import httpx

from ..engine import contacts
from ..engine.keys import Keyspace
from ..errors import ConfigError, FieldError, SmsError, SmsRejectedError
from ..models import Notification
from .addresses import read_contacts
from .channel import Outcome
from .webhook import origin

MAX_BODY = 1600
"""The longest text sent (Twilio's limit); a longer one is cut, ending with an ellipsis."""


class SmsProvider(Protocol):
    """Sends one text message through a provider's API: what an adapter implements."""

    async def send(self, to: str, body: str) -> str:
        """Send ``body`` to the E.164 number ``to``; the provider's id for the message. ``SmsError`` when it may
        go later; ``SmsRejectedError`` when it never will."""
        ...

    async def aclose(self) -> None:
        """Release what the adapter holds (its HTTP client)."""
        ...


class TwilioMessages:
    """Twilio's Messages API: ``POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json``, form-encoded
    ``To``, ``From`` (or ``MessagingServiceSid`` for an ``MG...`` sender) and ``Body``, with HTTP basic auth
    (account SID, auth token); 201 answers ``{"sid": ...}``, an error ``{"code": ..., "message": ...}``."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        sender: str,
        *,
        base_url: str = "https://api.twilio.com",
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not account_sid or not auth_token:
            raise ConfigError(
                "ZSCHED_TWILIO_ACCOUNT_SID and ZSCHED_TWILIO_AUTH_TOKEN are both needed to send SMS",
                "twilio_auth_token",
            )
        if not sender.startswith("MG"):
            try:
                contacts.phone(sender)
            except FieldError as exc:
                raise ConfigError(
                    f"ZSCHED_TWILIO_FROM must be an E.164 number or a Messaging Service SID (MG...): {exc}",
                    "twilio_from",
                ) from None
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"ZSCHED_TWILIO_URL must start with http:// or https://; got {base_url!r}", "twilio_url")
        self.url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.origin = origin(base_url)
        self.auth = (account_sid, auth_token)
        self.sender = {"MessagingServiceSid" if sender.startswith("MG") else "From": sender}
        self.timeout_s = timeout_s
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None

    async def send(self, to: str, body: str) -> str:
        """POST one message; its ``sid``."""
        try:
            async with asyncio.timeout(self.timeout_s):
                answer = await self._client.post(self.url, data={"To": to, **self.sender, "Body": body}, auth=self.auth)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise SmsError(f"SMS provider {self.origin} did not answer within {self.timeout_s} s") from exc
        except httpx.HTTPError as exc:  # connect, TLS, protocol: the type is safe to show
            raise SmsError(f"SMS provider {self.origin} could not be reached ({type(exc).__name__})") from exc
        if answer.status_code in (200, 201):
            return str(_json(answer).get("sid", ""))
        found = _json(answer)
        code = f" (error {found['code']})" if isinstance(found.get("code"), int | str) else ""
        said = f"\nprovider said: {' '.join(str(found.get('message') or answer.text[:200]).split())[:300]}"
        status = answer.status_code
        if status == 429 or status >= 500:
            raise SmsError(f"SMS provider {self.origin} answered {status}{code}; retrying{said}")
        if status in (401, 403):
            raise SmsError(
                f"SMS provider {self.origin} refused the credentials with {status}{code}; check ZSCHED_TWILIO_*{said}"
            )
        raise SmsRejectedError(f"SMS provider {self.origin} refused the message with {status}{code}{said}")

    async def aclose(self) -> None:
        """Close the HTTP client this adapter created."""
        if self._owns_client:
            await self._client.aclose()


class SmsChannel:
    """Sends each notification (its title, a line break, its message) to the recipient's phone number through
    ``provider``, at most ``concurrency`` requests at once."""

    def __init__(self, connection: Any, keyspace: Keyspace, provider: SmsProvider, *, concurrency: int = 8) -> None:
        if concurrency < 1:
            raise ConfigError(f"ZSCHED_SMS_CONCURRENCY must be at least 1; got {concurrency}", "sms_concurrency")
        self.redis = connection
        self.keys = keyspace
        self.provider = provider
        self._limit = asyncio.Semaphore(concurrency)

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]:
        """Read the batch's numbers in one round trip, then send every message concurrently."""
        found = await read_contacts(self.redis, self.keys, [n.recipient for n in batch])

        async def one(n: Notification) -> None:
            number = found[n.recipient].phone
            if number is None:
                raise SmsRejectedError(
                    f"recipient {n.recipient} has no phone number in their contact data; set one "
                    f"(zsched contact set {n.recipient} --phone +...) and retry it from the dead letters"
                )
            async with self._limit:  # the provider's timeout starts once a slot is free
                await self.provider.send(number, text(n))

        results = await asyncio.gather(*(one(n) for n in batch), return_exceptions=True)
        return [r if isinstance(r, BaseException) else None for r in results]

    async def aclose(self) -> None:
        """Close the provider's client."""
        await self.provider.aclose()


def text(n: Notification) -> str:
    """What an SMS says: the title, a line break, the message; cut to ``MAX_BODY`` characters."""
    body = f"{n.title}\n{n.message}" if n.message else n.title
    return body if len(body) <= MAX_BODY else body[: MAX_BODY - 1] + "…"


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        found = answer.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
