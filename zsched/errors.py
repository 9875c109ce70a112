"""The exceptions zsched raises. Every message says what was expected, what came, and how to fix it.

ZschedError
├── ValidationError (also ValueError)    the call was wrong; nothing was written
│   ├── PastScheduleError                scheduled time already passed on the server's clock
│   ├── NaiveDatetimeError               a datetime without a timezone
│   ├── RecipientsError                  empty, too many, or a bad recipient id
│   ├── CallTooLargeError                payload bytes x recipients over max_call_bytes
│   ├── FieldError                       an argument (title, message, type, priority, data, status,
│   │                                    limit, ids) out of bounds
│   ├── TemplateRenderError              a template, or its context, that cannot render
│   └── ConfigError                      a setting out of range: keyspace, retry policy
│       └── LayoutError                  ZSCHED_PARTITIONS differs from the keyspace's recorded count,
│                                        or a newer zsched's storage layout wrote the keyspace
├── NotFoundError (also KeyError)        no such notification (or it was purged)
│   └── RecurringNotFoundError           no such recurring schedule (or it was deleted)
├── NotPendingError                      cancel/reschedule of one that already left pending
├── TemplateNotFoundError (KeyError)     no template of that name (or version)
├── TemplateInUseError                   deleting a template pending notifications still use
├── IdempotencyConflictError             an idempotency key reused for a different request
├── PendingLimitError                    a creator holds the most pending notifications allowed
├── UnavailableError                     Redis did not answer (or an edit kept meeting others); safe to retry
└── DeliveryError                        a channel could not deliver; the worker retries it
    ├── WebhookError                     a webhook answered non-2xx, or not in time
    ├── UnknownChannelError              a notification names a channel nobody registered
    ├── EmailError                       an SMTP server could not be reached, or answered 4xx
    ├── SmsError                         an SMS provider could not be reached, was busy (429) or failing (5xx)
    └── PermanentDeliveryError           no retry can deliver it: the worker fails it at once
        ├── EmailRejectedError           an SMTP server answered 5xx, or the recipient has no address
        └── SmsRejectedError             an SMS provider refused the message (4xx), or the recipient has no phone

A script refuses with a code (its reply's first value); ``OUTCOMES`` maps each code to the exception
it stands for, and ``refusal_error`` builds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime


class ZschedError(Exception):
    """Base of every zsched error."""


class ValidationError(ZschedError, ValueError):
    """The call broke a rule; nothing was written. ``field`` names where."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PastScheduleError(ValidationError):
    """The scheduled time is already in the past on the server's clock."""

    @classmethod
    def at(cls, due_ms: int, now_ms: int) -> PastScheduleError:
        """The error for due time ``due_ms`` refused at server time ``now_ms`` (both epoch ms)."""
        due = datetime.fromtimestamp(due_ms / 1000, tz=UTC).isoformat()
        return cls(
            f"scheduled_at must be in the future; got {due} ({_human((now_ms - due_ms) / 1000)} ago by the "
            "server's clock). Pick a later time, or use delay=0 to send now",
            "scheduled_at",
        )


class NaiveDatetimeError(ValidationError):
    """A datetime came without a timezone, so the moment it names is ambiguous."""


class RecipientsError(ValidationError):
    """The recipients list is empty, too long, or holds an id zsched cannot store."""


class CallTooLargeError(ValidationError):
    """One call would store more than ``max_call_bytes`` (each recipient keeps its own copy of the payload)."""

    def __init__(self, payload_bytes: int, recipients: int, limit: int) -> None:
        super().__init__(
            f"this call would store {payload_bytes * recipients:,} bytes ({payload_bytes:,}-byte payload x "
            f"{recipients:,} recipients); at most {limit:,} are allowed per call (ZSCHED_MAX_CALL_BYTES). "
            "Send fewer recipients per call, or a smaller payload",
            "recipients",
        )
        self.payload_bytes, self.recipients, self.limit = payload_bytes, recipients, limit


class FieldError(ValidationError):
    """An argument is too long, of the wrong kind, or not one of the allowed values."""


class TemplateRenderError(ValidationError):
    """A template's source does not compile, or does not render with the context given (a variable it uses is
    missing, an operation the sandbox forbids); caught when the template is saved or scheduled."""


class ConfigError(ValidationError):
    """A configuration value (keyspace, retry policy) is out of range; nothing was built."""


class LayoutError(ConfigError):
    """This process's partition count differs from the one the keyspace was created with, or the keyspace was
    written by a newer storage layout than this process understands (``engine.layout``)."""


class NotFoundError(ZschedError, KeyError):
    """No notification has this id (it never existed, or its record was purged after retention)."""

    def __init__(self, notification_id: int) -> None:
        super().__init__(f"no notification with id {notification_id}")
        self.notification_id = notification_id

    def __str__(self) -> str:
        return str(self.args[0])


class RecurringNotFoundError(NotFoundError):
    """No recurring schedule has this id (it never existed, or it was deleted)."""

    def __init__(self, schedule_id: int) -> None:
        KeyError.__init__(self, f"no recurring schedule with id {schedule_id}")
        self.notification_id = schedule_id
        self.schedule_id = schedule_id


class NotPendingError(ZschedError):
    """Only a pending notification can be cancelled or rescheduled; ``status`` says where it is now."""

    def __init__(self, notification_id: int, status: str, action: str) -> None:
        super().__init__(
            f"cannot {action} notification {notification_id}: it is {status}, and only pending "
            "notifications can be changed"
        )
        self.notification_id = notification_id
        self.status = status


class TemplateNotFoundError(ZschedError, KeyError):
    """No template has this name (or it has no such version)."""

    def __init__(self, name: str, version: int | None = None) -> None:
        which = f"template {name!r}" + ("" if version is None else f" version {version}")
        super().__init__(f"no {which}; list them with `zsched template list`, or save it first")
        self.name, self.version = name, version

    def __str__(self) -> str:
        return str(self.args[0])


class TemplateInUseError(ZschedError):
    """A template cannot be deleted while notifications scheduled with it are still pending."""

    def __init__(self, name: str, pending: int) -> None:
        super().__init__(
            f"template {name!r} is used by {pending:,} pending notification(s) (or a schedule call under way); "
            "cancel them or wait until they are sent, then delete it"
        )
        self.name, self.pending = name, pending


class IdempotencyConflictError(ZschedError):
    """The idempotency key was first used for a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"idempotency key {key!r} was already used for a different request; use a new key for a new request"
        )
        self.key = key


class PendingLimitError(ZschedError):
    """The creator already holds (or with this call would hold) more pending notifications than allowed."""

    def __init__(self, creator: str, held: int, adding: int, limit: int) -> None:
        full = f"has {held:,} pending notifications" + (
            ", the most allowed" if held >= limit else f" and this call adds {adding:,}; at most {limit:,} are allowed"
        )
        super().__init__(
            f"creator {creator} {full} (ZSCHED_MAX_PENDING_PER_CREATOR); cancel some or wait for them to be sent"
        )
        self.creator, self.held, self.adding, self.limit = creator, held, adding, limit


class UnavailableError(ZschedError):
    """Redis did not answer in time. A call that changes state may or may not have been applied; retrying it is
    safe where it names itself (a schedule with an idempotency key answers with its first outcome), and a
    cancel or reschedule tells by the status it finds."""


class DeliveryError(ZschedError):
    """A channel could not deliver a notification; the worker retries it under the retry policy."""


class WebhookError(DeliveryError):
    """A webhook answered with a non-2xx status, or did not answer in time."""


class UnknownChannelError(DeliveryError):
    """A notification names a channel nobody registered."""


class PermanentDeliveryError(DeliveryError):
    """No retry can deliver the notification through this channel (the peer refused it for good, or the
    recipient cannot be reached there): the worker fails it at once instead of retrying."""


class EmailError(DeliveryError):
    """The SMTP server could not be reached or did not answer in time, or answered 4xx (try again later)."""


class EmailRejectedError(PermanentDeliveryError):
    """The SMTP server refused the message with a 5xx reply, or the recipient has no email address."""


class SmsError(DeliveryError):
    """The SMS provider could not be reached or did not answer in time, was rate limited (429), failing (5xx), or
    refused the credentials (401, 403): try again later."""


class SmsRejectedError(PermanentDeliveryError):
    """The SMS provider refused the message (a 4xx other than 401, 403 and 429: e.g. not a valid number), or the
    recipient has no phone number."""


@dataclass(frozen=True)
class Refusal:
    """A script's refusal: its code, the values it came with, and what the call was about."""

    code: str
    action: str
    notification_id: int = 0
    status: str = ""
    due_ms: int = 0
    now_ms: int = 0
    key: str = ""
    creator: str = ""
    held: int = 0
    adding: int = 0
    limit: int = 0


OUTCOMES: dict[str, Callable[[Refusal], ZschedError]] = {
    "missing": lambda r: NotFoundError(r.notification_id),
    "not_pending": lambda r: NotPendingError(r.notification_id, r.status, r.action),
    "past": lambda r: PastScheduleError.at(r.due_ms, r.now_ms),
    "conflict": lambda r: IdempotencyConflictError(r.key),
    "over_quota": lambda r: PendingLimitError(r.creator, r.held, r.adding, r.limit),
    "moved": lambda r: UnavailableError(
        "the partition was resharded while this call ran (zsched reshard); send the call again: it goes to the "
        "new partitions"
    ),
    "moving": lambda r: UnavailableError(
        f"notification {r.notification_id} is being moved to new partitions by a reshard (zsched reshard) this very "
        "moment; try again in a second: it is then found under the id it moved to"
    ),
    "stale": lambda r: UnavailableError(
        f"notification {r.notification_id} kept changing while it was being edited; try the edit again"
    ),
}
"""Script refusal code -> the exception it stands for (``lua/*.lua`` headers list each script's codes)."""


def refusal_error(refusal: Refusal) -> Exception:
    """The exception a script's refusal stands for; a RuntimeError for a code no script returns (a bug)."""
    make = OUTCOMES.get(refusal.code)
    if make is None:
        return RuntimeError(f"unexpected reply from {refusal.action} script: {refusal.code!r}")
    return make(refusal)


def _human(seconds: float) -> str:
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.1f} s"
