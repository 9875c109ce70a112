"""The HTTP API's request bodies, parameters and response shapes, as msgspec Structs decoded and built in one place.

Their ``msgspec.Meta`` constraints state the API's rules (lengths, limits, patterns) from the same constants the
checks use, and ``openapi`` generates the document from these types, so it cannot drift from what is served.
Bodies are decoded without the constraints (``loose_decoder``): the engine's validation checks them, with its
own messages naming the field.
"""

from __future__ import annotations

import re
import typing
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar, cast

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ..engine.validation import MAX_ID, MAX_MESSAGE, MAX_RECIPIENT_LEN, MAX_RECIPIENTS, MAX_TITLE, MAX_TYPE
from ..models import PRIORITIES, Notification, ScheduleResult, Stats, Status
from .auth import Principal
from .errors import ApiError, Error

Viewer = Literal["recipient", "creator", "admin"]
"""Who reads a notification, which decides how much of a failure it is told."""

S = TypeVar("S", bound=msgspec.Struct)

_LEGACY_BODY = re.compile(r"(; expected 2xx): .*", re.S)  # 0.1's webhook error: the response body followed
_URL_TAIL = re.compile(r"(\w+://)(?:[^\s/?#@'\"]*@)?([^\s/?#'\"]+)[^\s'\"]*")

MAX_LIMIT = 1000
DEFAULT_LIMIT = 50
MAX_IDEMPOTENCY_HEADER = 64
NO_NUL = r"^[^\x00]*$"  # text may hold anything but NUL (as in Django REST Framework)
RECIPIENT_PATTERN = r"^[^\s\x00-\x1f\x7f-\x9f]+$"

UserId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_RECIPIENT_LEN,
        pattern=RECIPIENT_PATTERN,
        description="printable characters, no spaces or control characters",
        extra_json_schema={"format": "recipient-id"},
    ),
]
Time = Annotated[datetime, Meta(tz=True)]
"""An aware datetime, RFC 3339 on the wire (``tz=True`` is what makes the schema say date-time)."""
_WHOLE = {"minimum": -(2**63), "maximum": 2**64 - 1}  # what msgspec decodes as int (Meta bounds stop at int64)
Recipient = (
    UserId
    | Annotated[int, Meta(extra_json_schema=_WHOLE)]
    # JSON has one number type: 7.0 is the integer 7 (checked in schedule)
    | Annotated[float, Meta(multiple_of=1, description="a whole number: 7.0 is 7", extra_json_schema=_WHOLE)]
)
DataObject = Annotated[
    dict[str, Any],
    Meta(
        description="any JSON object up to 16 KiB, with no NUL in its keys or strings",
        extra_json_schema={
            "propertyNames": {"pattern": NO_NUL},
            "additionalProperties": {"$ref": "#/components/schemas/DataValue"},
        },
    ),
]


class ScheduleBody(msgspec.Struct, forbid_unknown_fields=False):
    """``POST /api/notifications/schedule/``: one notification per recipient, all due at ``scheduled_at``."""

    recipients: Annotated[list[Recipient], Meta(min_length=1, max_length=MAX_RECIPIENTS)]
    title: Annotated[str, Meta(min_length=1, max_length=MAX_TITLE, pattern=NO_NUL)]
    message: Annotated[str, Meta(max_length=MAX_MESSAGE, pattern=NO_NUL)]
    scheduled_at: Annotated[datetime, Meta(tz=True, description="ISO 8601 with an offset (Z or +hh:mm), in the future")]
    type: Annotated[str, Meta(min_length=1, max_length=MAX_TYPE, pattern=NO_NUL)] = "system"
    priority: Annotated[str, Meta(extra_json_schema={"enum": list(PRIORITIES)})] = "normal"
    data: DataObject | None = None
    channels: (
        Annotated[
            list[str],
            Meta(
                description="how it leaves when due; default: the server's default channels",
                extra_json_schema={"uniqueItems": True},
            ),
        ]
        | None
    ) = None


class RescheduleBody(msgspec.Struct, forbid_unknown_fields=False):
    """``PATCH /api/notifications/{id}/``: the new due time."""

    scheduled_at: Annotated[datetime, Meta(tz=True, description="ISO 8601 with an offset (Z or +hh:mm), in the future")]


class ScheduleHeaders(msgspec.Struct):
    """The schedule call's optional headers."""

    idempotency_key: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=MAX_IDEMPOTENCY_HEADER,
                pattern="^[ -~]+$",
                description=f"1 to {MAX_IDEMPOTENCY_HEADER} printable ASCII characters; a retry with the same key "
                "and body returns the first answer",
            ),
        ]
        | UnsetType
    ) = msgspec.field(name="Idempotency-Key", default=UNSET)


class ListQuery(msgspec.Struct):
    """``GET /api/notifications/``'s query parameters."""

    status: Annotated[Status, Meta(description="only this status")] | UnsetType = UNSET
    limit: Annotated[int, Meta(ge=1, le=MAX_LIMIT, description="page size")] = DEFAULT_LIMIT
    cursor: Annotated[int, Meta(ge=0, le=MAX_ID, description="next_cursor of the previous page")] | UnsetType = UNSET
    recipient: (
        Annotated[
            UserId,
            Meta(
                description="only notifications this user receives (yourself unless admin; the default without "
                "created_by)"
            ),
        ]
        | UnsetType
    ) = UNSET
    created_by: (
        Annotated[
            UserId, Meta(description="only notifications this user created (yourself unless admin), across partitions")
        ]
        | UnsetType
    ) = UNSET


class NotificationPath(msgspec.Struct):
    """A notification's path parameter (an id past 2**63-1 is no notification: 404)."""

    id: Annotated[int, Meta(ge=0)]


class SocketQuery(msgspec.Struct):
    """``/ws``'s query parameters."""

    token: Annotated[str, Meta(description="the token, for browsers that cannot set Authorization")] | UnsetType = UNSET
    since: Annotated[str, Meta(description="the last stream_id received: what was missed comes first")] | UnsetType = (
        UNSET
    )


class ErrorBody(Error, kw_only=True):
    """Every error: a short code (e.g. invalid, not_found, not_pending), what was expected, what came and how to
    fix it, and where (a body field path, header or parameter)."""

    id: Annotated[int, Meta(description="409 not_pending only: the notification")] | UnsetType = UNSET
    scheduled_status: Annotated[Status, Meta(description="409 not_pending only: the status now")] | UnsetType = UNSET


class Scheduled(msgspec.Struct):
    """The schedule call's answer: one id per distinct recipient, in the order given."""

    notification_ids: list[int]
    count: int
    scheduled_at: Time

    @classmethod
    def of(cls, result: ScheduleResult) -> Scheduled:
        """The answer for ``result``."""
        return cls(result.notification_ids, result.count, result.scheduled_at)


class ScheduleStatus(msgspec.Struct, kw_only=True):
    """Where a notification is: the seed's schedule_status shape, plus ``recipient``, ``attempts`` and
    ``delivered_at``; no error text, so it is the same for every viewer."""

    id: int
    title: str
    scheduled_at: Time
    scheduled_status: Status
    is_sent: bool
    sent_at: Time | None
    created_at: Time
    recipient: str
    attempts: int
    delivered_at: Annotated[datetime, Meta(tz=True, description="when a WebSocket client acknowledged it")] | None


class NotificationView(msgspec.Struct, kw_only=True):
    """One notification in full, as its viewer may read it."""

    id: int
    recipient: str
    title: str
    message: str
    type: str
    priority: str
    data: dict[str, Any]
    channels: list[str]
    scheduled_at: Time
    scheduled_status: Status
    is_sent: bool
    attempts: int
    created_at: Time
    sent_at: Time | None
    cancelled_at: Time | None
    failed_at: Time | None
    delivered_at: Time | None
    created_by: str | None
    last_error: (
        Annotated[
            str,
            Meta(
                description="why the last attempt failed: a generic reason for the recipient; for the creator "
                "and admins the error, with no URL path, query or credentials"
            ),
        ]
        | None
    )
    last_error_detail: (
        Annotated[str, Meta(description="admins only: what the receiver answered (e.g. the start of a webhook's body)")]
        | UnsetType
        | None
    ) = UNSET
    deliveries: Annotated[
        dict[str, str],
        Meta(
            description="each channel's outcome: 'sent', 'pending', 'cancelled', or 'failed' (for the creator and "
            "admins 'failed: <why>', as last_error)"
        ),
    ]


VIEWED = tuple(
    f for f in NotificationView.__struct_fields__ if f in Notification.__struct_fields__ and not f.startswith("last_")
)
"""The fields ``full_view`` copies from the notification as they are (the errors depend on who reads)."""
UNVIEWED = ("done", "channel_errors")
"""Notification fields no view shows as they are (``deliveries`` tells them)."""


class Cancelled(msgspec.Struct):
    """A cancelled notification."""

    id: int
    scheduled_status: Literal["cancelled"]
    cancelled_at: Time | None


class NotificationPage(msgspec.Struct):
    """One page of notifications, newest first."""

    items: list[NotificationView]
    next_cursor: (
        Annotated[
            int,
            Meta(
                description="pass as ?cursor= for the next page; null only when nothing more matches (a page may be "
                "short, even empty, before that when its scan budget ran out)"
            ),
        ]
        | None
    )


class PartitionStats(Stats, kw_only=True):
    """One partition's stats."""

    partition: int


class StatsView(Stats, kw_only=True):
    """Counts, totals, next due and lag, overall and per partition."""

    partitions: list[PartitionStats]


class Health(msgspec.Struct):
    """A liveness or readiness answer."""

    status: str


def loose_decoder(cls: type[S]) -> msgspec.json.Decoder[S]:
    """A JSON decoder of ``cls`` that checks types but not its ``Meta`` constraints: it decodes into a subclass
    whose fields are the same types without ``Annotated``, so the engine's checks answer with their messages."""
    hints = typing.get_type_hints(cls)  # Annotated stripped, nested ones too
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for f in msgspec.structs.fields(cls):
        if f.required:
            fields.append((f.name, hints[f.name]))
        elif f.default_factory is not msgspec.NODEFAULT:
            fields.append((f.name, hints[f.name], msgspec.field(default_factory=f.default_factory)))
        else:
            fields.append((f.name, hints[f.name], f.default))
    return msgspec.json.Decoder(cast(type[S], msgspec.defstruct(cls.__name__, fields, bases=(cls,))))


schedule_decoder = loose_decoder(ScheduleBody)
reschedule_decoder = loose_decoder(RescheduleBody)


def viewer(principal: Principal, n: Notification) -> Viewer:
    """Whether ``principal`` reads ``n`` as an admin, its creator (who chose where it goes) or its recipient."""
    if principal.admin:
        return "admin"
    return "creator" if n.created_by == principal.user else "recipient"


def failure(n: Notification, who: Viewer) -> str | None:
    """``last_error`` as ``who`` may read it: an admin and the creator get it with no URL path, query or
    credentials (a webhook URL can be a bearer secret); a recipient gets only a generic reason."""
    if n.last_error is None:
        return None
    if who != "recipient":  # records stored before 0.2.0 name the full URL, and the response body after it
        text = n.last_error if who == "admin" else _LEGACY_BODY.sub(r"\1", n.last_error)
        return _URL_TAIL.sub(r"\1\2", text)
    if n.scheduled_status == "failed":
        return "delivery failed for good"
    if n.scheduled_status in ("pending", "processing"):
        return "delivery failed; it will be retried"
    return "an earlier delivery attempt failed"


def deliveries(n: Notification, who: Viewer) -> dict[str, str]:
    """Each channel's outcome ("sent", "pending", "failed: <why>"), for the channels the notification names
    or an attempt recorded; why as ``failure`` lets ``who`` read it (a recipient gets "failed" alone)."""
    names = n.channels or sorted({*n.done, *n.channel_errors})
    out: dict[str, str] = {}
    for name in names:
        error = n.channel_errors.get(name) or (n.last_error if len(names) == 1 else None)
        if n.scheduled_status == "sent" or name in n.done:
            out[name] = "sent"
        elif n.scheduled_status == "cancelled":
            out[name] = "cancelled"
        elif error is None:
            out[name] = "pending"
        elif who == "recipient":
            out[name] = "failed"
        else:
            out[name] = f"failed: {failure(msgspec.structs.replace(n, last_error=error), who)}"
    return out


def status_view(n: Notification) -> ScheduleStatus:
    """Where ``n`` is, the same for every viewer."""
    return ScheduleStatus(
        id=n.id,
        title=n.title,
        scheduled_at=n.scheduled_at,
        scheduled_status=n.scheduled_status,
        is_sent=n.is_sent,
        sent_at=n.sent_at,
        created_at=n.created_at,
        recipient=n.recipient,
        attempts=n.attempts,
        delivered_at=n.delivered_at,
    )


def full_view(n: Notification, who: Viewer = "recipient") -> NotificationView:
    """Every field of a notification, plus ``is_sent`` and each channel's outcome (``deliveries``);
    ``last_error`` as ``who`` may read it, and ``last_error_detail`` (e.g. a webhook's response body) for
    admins only."""
    return NotificationView(
        **{name: getattr(n, name) for name in VIEWED},
        is_sent=n.is_sent,
        last_error=failure(n, who),
        last_error_detail=n.last_error_detail if who == "admin" else UNSET,
        deliveries=deliveries(n, who),
    )


def integral(value: str | int | float) -> str | int | float:
    """A JSON number with no fraction as the integer it is (``7.0`` is ``7``); anything else unchanged."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def parse_int(raw: str | None, name: str, low: int, high: int) -> int | None:
    """A query parameter as a whole number in [low, high]; 422 naming it otherwise (None when absent)."""
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:  # '²'.isdigit() is True
        raise ApiError(422, f"{name} must be a whole number from {low} to {high}; got {raw[:40]!r}", name)
    return int(raw)
