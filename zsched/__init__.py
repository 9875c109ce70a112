"""zsched: a Redis-native scheduler for delayed notifications.

The vocabulary users import lives here; the subpackages hold the machinery: ``engine`` (operations,
keys, scripts), ``delivery`` (the worker and the channels), ``web`` (HTTP API, WebSocket gateway) and
``cli`` (the ``zsched`` command).
"""

__version__ = "0.2.0"

from . import _moved
from .client import AsyncScheduler, Scheduler
from .delivery import CallableDelivery, Delivery, InboxDelivery, Router, WebhookChannel, Worker
from .embedded import EmbeddedServer
from .engine import Core, Keyspace, Retention, RetryPolicy
from .errors import (
    ConfigError,
    DeliveryError,
    IdempotencyConflictError,
    NotFoundError,
    NotPendingError,
    PastScheduleError,
    RecurringNotFoundError,
    UnavailableError,
    UnknownChannelError,
    ValidationError,
    WebhookError,
    ZschedError,
)
from .models import Notification, Page, RecurringPage, RecurringSchedule, ScheduleResult, Stats
from .settings import Settings

_moved.install()

__all__ = [
    "AsyncScheduler",
    "CallableDelivery",
    "ConfigError",
    "Core",
    "Delivery",
    "DeliveryError",
    "EmbeddedServer",
    "IdempotencyConflictError",
    "InboxDelivery",
    "Keyspace",
    "NotFoundError",
    "NotPendingError",
    "Notification",
    "Page",
    "PastScheduleError",
    "RecurringNotFoundError",
    "RecurringPage",
    "RecurringSchedule",
    "Retention",
    "RetryPolicy",
    "Router",
    "ScheduleResult",
    "Scheduler",
    "Settings",
    "Stats",
    "UnavailableError",
    "UnknownChannelError",
    "ValidationError",
    "WebhookChannel",
    "WebhookError",
    "Worker",
    "ZschedError",
]
