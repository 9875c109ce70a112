"""zsched: a Redis-native scheduler for delayed notifications."""

from .backoff import RetryPolicy
from .client import AsyncScheduler, Scheduler
from .core import Core, Retention
from .errors import (
    IdempotencyConflictError,
    NotFoundError,
    NotPendingError,
    PastScheduleError,
    UnavailableError,
    ValidationError,
    ZschedError,
)
from .keys import Keyspace
from .models import Notification, Page, ScheduleResult, Stats

__all__ = [
    "AsyncScheduler", "Core", "IdempotencyConflictError", "Keyspace", "NotFoundError", "NotPendingError",
    "Notification", "Page", "PastScheduleError", "Retention", "RetryPolicy", "ScheduleResult", "Scheduler",
    "Stats", "UnavailableError", "ValidationError", "ZschedError",
]
__version__ = "0.1.0"
