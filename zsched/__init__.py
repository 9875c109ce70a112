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
    TemplateInUseError,
    TemplateNotFoundError,
    TemplateRenderError,
    UnavailableError,
    UnknownChannelError,
    ValidationError,
    WebhookError,
    ZschedError,
)
from .models import (
    Contact,
    Erasure,
    Inbox,
    InboxItem,
    Notification,
    Page,
    ReadMarks,
    Rendered,
    ScheduleResult,
    Stats,
    Template,
    TemplateRef,
    TemplateVariant,
)
from .settings import Settings

_moved.install()

__all__ = [
    "AsyncScheduler",
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
    "Inbox",
    "InboxDelivery",
    "InboxItem",
    "Keyspace",
    "NotFoundError",
    "NotPendingError",
    "Notification",
    "Page",
    "PastScheduleError",
    "PermanentDeliveryError",
    "ReadMarks",
    "Rendered",
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
    "Template",
    "TemplateInUseError",
    "TemplateNotFoundError",
    "TemplateRef",
    "TemplateRenderError",
    "TemplateVariant",
    "TwilioMessages",
    "UnavailableError",
    "UnknownChannelError",
    "ValidationError",
    "WebhookChannel",
    "WebhookError",
    "Worker",
    "ZschedError",
]
