"""zsched: a Redis-native scheduler for delayed notifications.

The vocabulary users import lives here; the subpackages hold the machinery: ``engine`` (operations,
keys, scripts), ``delivery`` (the worker and the channels), ``web`` (HTTP API, WebSocket gateway) and
``cli`` (the ``zsched`` command).
"""

__version__ = "0.2.0"

from . import _moved
from .client import AsyncScheduler, Scheduler
from .delivery import (
    CallableDelivery,
    Delivery,
    EmailChannel,
    InboxDelivery,
    Router,
    SmsChannel,
    TwilioMessages,
    WebhookChannel,
    Worker,
)
from .embedded import EmbeddedServer
from .engine import Core, Keyspace, Retention, RetryPolicy
from .errors import (
    ConfigError,
    DeliveryError,
    EmailError,
    EmailRejectedError,
    IdempotencyConflictError,
    NotFoundError,
    NotPendingError,
    PastScheduleError,
    PermanentDeliveryError,
    SmsError,
    SmsRejectedError,
    UnavailableError,
    UnknownChannelError,
    ValidationError,
    WebhookError,
    ZschedError,
)
from .models import BatchChange, BatchSummary, Contact, Erasure, Notification, Page, Pauses, ScheduleResult, Stats
from .settings import Settings

_moved.install()

__all__ = [
    "AsyncScheduler",
    "BatchChange",
    "BatchSummary",
    "CallableDelivery",
    "ConfigError",
    "Contact",
    "Core",
    "Delivery",
    "DeliveryError",
    "EmailChannel",
    "EmailError",
    "EmailRejectedError",
    "EmbeddedServer",
    "Erasure",
    "IdempotencyConflictError",
    "InboxDelivery",
    "Keyspace",
    "NotFoundError",
    "NotPendingError",
    "Notification",
    "Page",
    "PastScheduleError",
    "Pauses",
    "PermanentDeliveryError",
    "Retention",
    "RetryPolicy",
    "Router",
    "ScheduleResult",
    "Scheduler",
    "Settings",
    "SmsChannel",
    "SmsError",
    "SmsRejectedError",
    "Stats",
    "TwilioMessages",
    "UnavailableError",
    "UnknownChannelError",
    "ValidationError",
    "WebhookChannel",
    "WebhookError",
    "Worker",
    "ZschedError",
]
