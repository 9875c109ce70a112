"""The exceptions zsched raises. Every message says what was expected, what came, and how to fix it.

ZschedError
├── ValidationError (also ValueError)    the call was wrong; nothing was written
│   ├── PastScheduleError                scheduled time already passed on the server's clock
│   ├── NaiveDatetimeError               a datetime without a timezone
│   ├── RecipientsError                  empty, too many, or a bad recipient id
│   └── FieldError                       title, message, type, priority or data out of bounds
├── NotFoundError (also KeyError)        no such notification (or it was purged)
├── NotPendingError                      cancel/reschedule of one that already left pending
├── IdempotencyConflictError             an idempotency key reused for a different request
└── UnavailableError                     Redis did not answer; safe to retry
"""

from __future__ import annotations


class ZschedError(Exception):
    """Base of every zsched error."""


class ValidationError(ZschedError, ValueError):
    """The call broke a rule; nothing was written. ``field`` names where."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PastScheduleError(ValidationError):
    """The scheduled time is already in the past on the server's clock."""


class NaiveDatetimeError(ValidationError):
    """A datetime came without a timezone, so the moment it names is ambiguous."""


class RecipientsError(ValidationError):
    """The recipients list is empty, too long, or holds an id zsched cannot store."""


class FieldError(ValidationError):
    """A field is too long, of the wrong kind, or not one of the allowed values."""


class NotFoundError(ZschedError, KeyError):
    """No notification has this id (it never existed, or its record was purged after retention)."""

    def __init__(self, notification_id: int) -> None:
        super().__init__(f"no notification with id {notification_id}")
        self.notification_id = notification_id

    def __str__(self) -> str:
        return str(self.args[0])


class NotPendingError(ZschedError):
    """Only a pending notification can be cancelled or rescheduled; ``status`` says where it is now."""

    def __init__(self, notification_id: int, status: str, action: str) -> None:
        super().__init__(
            f"cannot {action} notification {notification_id}: it is {status}, and only pending "
            "notifications can be changed"
        )
        self.notification_id = notification_id
        self.status = status


class IdempotencyConflictError(ZschedError):
    """The idempotency key was first used for a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"idempotency key {key!r} was already used for a different request; use a new key for a new request"
        )
        self.key = key


class UnavailableError(ZschedError):
    """Redis did not answer; nothing is known to be written, and the call is safe to retry."""
