"""Where a zsched process's delivery is wired, once: the channel registry, the router, the worker.

A channel is one module and one ``register_channel`` call: its name, how to build it, and whether given
settings enable it. ``build_router`` makes the Router every zsched process delivers through (``zsched
serve`` and ``zsched worker`` alike), and ``enabled_channels`` names the same channels without building
them, for the HTTP API's accepted ``channels`` and its OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..client import AsyncScheduler
from ..engine.keys import Keyspace
from ..engine.ownership import OWNER_LEASE_MS
from ..errors import ConfigError
from ..settings import Settings, env_name
from .channel import Delivery
from .email import EmailChannel
from .inbox import InboxDelivery
from .outcomes import Observer
from .ownership import Ownership
from .router import Router
from .sms import SmsChannel, TwilioMessages
from .webhook import WebhookChannel
from .worker import Worker


@dataclass(frozen=True)
class ChannelContext:
    """What a channel is built from: the settings, the asyncio connection, and the keyspace."""

    settings: Settings
    redis: Any
    keyspace: Keyspace


@dataclass(frozen=True)
class Registration:
    """A registered channel: how to build it, and whether settings enable it."""

    name: str
    build: Callable[[ChannelContext], Delivery]
    enabled: Callable[[Settings], bool]


_REGISTRY: dict[str, Registration] = {}


def register_channel(
    name: str, build: Callable[[ChannelContext], Delivery], *, enabled: Callable[[Settings], bool] = lambda s: True
) -> None:
    """Make channel ``name`` available to every zsched process whose settings enable it."""
    Router.check_name(name)
    _REGISTRY[name] = Registration(name, build, enabled)


def unregister_channel(name: str) -> None:
    """Forget a registered channel (tests, plugins being unloaded)."""
    _REGISTRY.pop(name, None)


def enabled_channels(settings: Settings) -> tuple[str, ...]:
    """The names of the channels these settings enable, in registration order; builds nothing."""
    return tuple(r.name for r in _REGISTRY.values() if r.enabled(settings))


def build_router(settings: Settings, connection: Any, keyspace: Keyspace) -> Router:
    """The router over every enabled channel; the default channels must be among them."""
    context = ChannelContext(settings, connection, keyspace)
    names = enabled_channels(settings)
    missing = [name for name in settings.delivery.channels if name not in names]
    if missing:
        raise ConfigError(
            f"{env_name('channels')}: default channel {missing[0]!r} is not enabled; enabled: {', '.join(names)}. "
            f"Set {env_name('webhook_url')} and {env_name('webhook_secret')} for 'webhook', {env_name('smtp_host')} "
            f"and {env_name('smtp_from')} for 'email', {env_name('twilio_account_sid')} for 'sms', or register a "
            "channel with zsched.delivery.register_channel",
            "channels",
        )
    return Router({name: _REGISTRY[name].build(context) for name in names}, default=settings.delivery.channels)


def build_worker(
    settings: Settings, scheduler: AsyncScheduler, delivery: Delivery, *, observer: Observer | None = None
) -> Worker:
    """The worker these settings describe, delivering through ``delivery`` (usually ``build_router``'s)."""
    w = settings.worker
    owner_lease_ms = min(OWNER_LEASE_MS, w.lease_ms) if w.owner_lease_ms is None else w.owner_lease_ms
    ownership = Ownership(scheduler, lease_ms=owner_lease_ms) if owner_lease_ms > 0 else None
    return Worker(
        scheduler,
        delivery,
        batch=w.batch,
        lease_ms=w.lease_ms,
        idle_s=w.idle_s,
        reap_every_s=w.reap_every_s,
        purge_every_s=w.purge_every_s,
        purge_batch=w.purge_batch,
        observer=observer,
        ownership=ownership,
        recipient_limits=w.limits(),
    )


def _webhook(context: ChannelContext) -> Delivery:
    d = context.settings.delivery
    if not d.webhook_secret:
        raise ConfigError(
            f"{env_name('webhook_secret')}: a webhook needs a signing secret; set it beside {env_name('webhook_url')}",
            "webhook_secret",
        )
    return WebhookChannel(
        str(d.webhook_url),
        d.webhook_secret,
        previous_secret=d.webhook_previous_secret,
        timeout_s=d.webhook_timeout_s,
        concurrency=d.webhook_concurrency,
    )


def _email(context: ChannelContext) -> Delivery:
    d = context.settings.delivery
    if not d.smtp_from:
        raise ConfigError(
            f"{env_name('smtp_from')}: the email channel needs a From address; set it beside {env_name('smtp_host')}",
            "smtp_from",
        )
    return EmailChannel(
        context.redis,
        context.keyspace,
        host=str(d.smtp_host),
        port=d.smtp_port,
        from_address=d.smtp_from,
        username=d.smtp_username,
        password=d.smtp_password,
        starttls=d.smtp_starttls,
        timeout_s=d.smtp_timeout_s,
    )


def _sms(context: ChannelContext) -> Delivery:
    d = context.settings.delivery
    if not d.twilio_auth_token or not d.twilio_from:
        raise ConfigError(
            f"{env_name('twilio_auth_token')} and {env_name('twilio_from')}: the sms channel needs both beside "
            f"{env_name('twilio_account_sid')}",
            "twilio_from" if d.twilio_auth_token else "twilio_auth_token",
        )
    provider = TwilioMessages(
        str(d.twilio_account_sid), d.twilio_auth_token, d.twilio_from, base_url=d.twilio_url, timeout_s=d.sms_timeout_s
    )
    return SmsChannel(context.redis, context.keyspace, provider, concurrency=d.sms_concurrency)


register_channel(
    "websocket",
    lambda c: InboxDelivery(
        c.redis, c.keyspace, inbox_maxlen=c.settings.delivery.inbox_maxlen, keep_ms=c.settings.engine.keep_sent_ms
    ),
)
register_channel("webhook", _webhook, enabled=lambda s: bool(s.delivery.webhook_url))
register_channel("email", _email, enabled=lambda s: bool(s.delivery.smtp_host))
register_channel("sms", _sms, enabled=lambda s: bool(s.delivery.twilio_account_sid))
