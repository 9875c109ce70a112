"""The HTTP API's request bodies and parameters, as msgspec Structs decoded in one place (``views`` has the answers).

Their ``msgspec.Meta`` constraints state the API's rules (lengths, limits, patterns) from the same constants the
checks use, and ``openapi`` generates the document from these types, so it cannot drift from what is served.
Bodies are decoded without the constraints (``loose_decoder``): the engine's validation checks them, with its
own messages naming the field.
"""

from __future__ import annotations

import typing
from datetime import date, datetime
from typing import Annotated, Any, TypeVar, cast

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ..engine.contacts import EMAIL_PATTERN, LOCALE_PATTERN, MAX_EMAIL, MAX_LOCALE, PHONE_PATTERN
from ..engine.localtime import CLOCK_PATTERN, QUIET_PATTERN
from ..engine.optouts import CHANNEL_PATTERN, MAX_OPT_OUTS, OPT_OUT_ENTRY_PATTERN
from ..engine.recurrence import MAX_EVERY_MS
from ..engine.validation import (
    COLLAPSE_KEY_PATTERN,
    MAX_COLLAPSE_KEY,
    MAX_DELAY_MS,
    MAX_DIGEST_KEY,
    MAX_DIGEST_MAX,
    MAX_DIGEST_WINDOW_MS,
    MAX_ID,
    MAX_MESSAGE,
    MAX_RECIPIENT_LEN,
    MAX_RECIPIENTS,
    MAX_SPREAD_MS,
    MAX_TITLE,
    MAX_TYPE,
    MIN_DIGEST_MAX,
    MIN_DIGEST_WINDOW_MS,
)
from ..models import ON_LATE, PRIORITIES, Status
from .errors import ApiError

S = TypeVar("S", bound=msgspec.Struct)

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
OptOutType = Annotated[
    str,
    Meta(min_length=1, max_length=MAX_TYPE, pattern=NO_NUL, description="a notification type, or '*' for every type"),
]
OptOutEntry = Annotated[
    str,
    Meta(
        max_length=MAX_TYPE + 66,
        pattern=OPT_OUT_ENTRY_PATTERN,
        description="'channel:type' ('*' as the type: every type; as the channel: every channel), e.g. sms:marketing",
    ),
]
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


SCHEDULE_TIMING = [
    {"required": ["scheduled_at"], "properties": {"scheduled_at": {"type": "string"}}},
    {
        "required": ["deliver_at_local", "local_date"],
        "properties": {"deliver_at_local": {"type": "string"}, "local_date": {"type": "string"}},
    },
]
"""A schedule body says when: ``scheduled_at``, or ``deliver_at_local`` with ``local_date`` (for the schema: no
Python type says it)."""


class ScheduleBody(msgspec.Struct, forbid_unknown_fields=False):
    """``POST /api/notifications/schedule/``: one notification per recipient, all due at ``scheduled_at`` (or each
    at ``deliver_at_local`` on ``local_date`` in their own zone)."""

    recipients: Annotated[list[Recipient], Meta(min_length=1, max_length=MAX_RECIPIENTS)]
    title: Annotated[str, Meta(min_length=1, max_length=MAX_TITLE, pattern=NO_NUL)]
    message: Annotated[str, Meta(max_length=MAX_MESSAGE, pattern=NO_NUL)]
    scheduled_at: (
        Annotated[
            datetime,
            Meta(
                tz=True,
                description="ISO 8601 with an offset (Z or +hh:mm), in the future; required unless "
                "deliver_at_local is given",
            ),
        ]
        | None
    ) = None
    deliver_at_local: (
        Annotated[
            str,
            Meta(
                pattern=CLOCK_PATTERN,
                description="HH:MM: each recipient is due at this time of day on local_date "
                "in their own zone (UTC without one), instead of scheduled_at",
            ),
        ]
        | None
    ) = None
    local_date: Annotated[date, Meta(description="the date deliver_at_local is on")] | None = None
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
    expires_at: (
        Annotated[
            datetime,
            Meta(tz=True, description="not sent when claimed at or after this (it ends expired); after scheduled_at"),
        ]
        | None
    ) = None
    on_late: Annotated[
        str,
        Meta(
            extra_json_schema={"enum": list(ON_LATE)},
            description="skip: not sent when claimed more than late_after_s past its due time (it ends expired); "
            "send: sent however late",
        ),
    ] = "send"
    late_after_s: (
        Annotated[
            float,
            Meta(ge=0, le=MAX_DELAY_MS / 1000, description="with on_late skip: how late is too late (default 60)"),
        ]
        | None
    ) = None
    spread_s: (
        Annotated[
            float,
            Meta(
                ge=0,
                le=MAX_SPREAD_MS / 1000,
                description="spread the recipients' due times evenly over this many seconds after scheduled_at "
                "(a huge fan-out does not land in one instant)",
            ),
        ]
        | None
    ) = None
    collapse_key: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=MAX_COLLAPSE_KEY,
                pattern=COLLAPSE_KEY_PATTERN,
                description="each recipient's pending notification scheduled earlier with this key ends collapsed",
            ),
        ]
        | None
    ) = None
    digest_key: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=MAX_DIGEST_KEY,
                pattern=COLLAPSE_KEY_PATTERN,
                description="each recipient's notifications with this key due within the window of the first go out "
                "as one delivery per channel: a count plus the items (data.count, data.items), none before its own "
                "due time",
            ),
        ]
        | None
    ) = None
    digest_window_s: (
        Annotated[
            float,
            Meta(
                ge=MIN_DIGEST_WINDOW_MS / 1000,
                le=MAX_DIGEST_WINDOW_MS / 1000,
                description="with digest_key: how long a digest it opens stays open after its due time (default "
                "ZSCHED_DIGEST_WINDOW_MS)",
            ),
        ]
        | None
    ) = None
    digest_max: (
        Annotated[
            int,
            Meta(
                ge=MIN_DIGEST_MAX,
                le=MAX_DIGEST_MAX,
                description="with digest_key: most members of a digest it opens; a full one goes at once (default "
                "ZSCHED_DIGEST_MAX)",
            ),
        ]
        # JSON has one number type: 7.0 is the integer 7 (made one in the handler)
        | Annotated[
            float, Meta(ge=MIN_DIGEST_MAX, le=MAX_DIGEST_MAX, multiple_of=1, description="a whole number: 7.0 is 7")
        ]
        | None
    ) = None


class ContactBody(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /api/contacts/``: the contact fields to set; a field left out is kept, ``null`` removes it."""

    email: (
        Annotated[
            str,
            Meta(
                max_length=MAX_EMAIL,
                pattern=EMAIL_PATTERN,
                description="an ASCII address like name@example.com (an international domain in its xn-- form)",
            ),
        ]
        | UnsetType
        | None
    ) = UNSET
    phone: Annotated[str, Meta(pattern=PHONE_PATTERN, description="E.164, e.g. +14155550123")] | UnsetType | None = (
        UNSET
    )
    locale: (
        Annotated[str, Meta(max_length=MAX_LOCALE, pattern=LOCALE_PATTERN, description="a BCP 47 tag, e.g. pt-BR")]
        | UnsetType
        | None
    ) = UNSET
    zone: (
        Annotated[str, Meta(description="an IANA time zone this server's zone database knows, e.g. Europe/Lisbon")]
        | UnsetType
        | None
    ) = UNSET
    quiet_hours: (
        Annotated[str, Meta(pattern=QUIET_PATTERN, description="HH:MM-HH:MM in the zone (22:00-07:00 spans midnight)")]
        | UnsetType
        | None
    ) = UNSET
    opt_outs: (
        Annotated[
            dict[Annotated[str, Meta(pattern=CHANNEL_PATTERN)], list[OptOutType]],
            Meta(
                description="replaces every opt-out: channel -> the notification types not sent through it ('*': "
                'every type; channel \'*\': every channel), e.g. {"sms": ["marketing"]}; null or {} removes all'
            ),
        ]
        | UnsetType
        | None
    ) = UNSET
    opt_out: (
        Annotated[
            list[OptOutEntry],
            Meta(max_length=MAX_OPT_OUTS, description="opt-outs to add, 'channel:type', e.g. ['sms:marketing']"),
        ]
        | UnsetType
    ) = UNSET
    opt_in: (
        Annotated[
            list[OptOutEntry],
            Meta(max_length=MAX_OPT_OUTS, description="opt-outs to remove, 'channel:type', e.g. ['sms:marketing']"),
        ]
        | UnsetType
    ) = UNSET


class ErasureBody(msgspec.Struct, forbid_unknown_fields=False):
    """``POST /api/erasures/``: whose contact data and inbox to erase (a recipient scheduled as the number 7 is
    ``"7"``)."""

    recipient: UserId


class PauseBody(msgspec.Struct, forbid_unknown_fields=False):
    """``POST /api/pause`` and ``POST /api/resume``: the type to pause or resume; none (or null): everything
    (resume: every pause)."""

    type: Annotated[str, Meta(min_length=1, max_length=MAX_TYPE, pattern=NO_NUL)] | None = None


class ContactQuery(msgspec.Struct):
    """``/api/contacts/``'s query parameter."""

    recipient: (
        Annotated[
            UserId,
            Meta(description="whose contact (yourself unless admin or a contacts:write token); default: yourself"),
        ]
        | UnsetType
    ) = UNSET


class RescheduleBody(msgspec.Struct, forbid_unknown_fields=False):
    """``PATCH /api/notifications/{id}/``: the new due time."""

    scheduled_at: Annotated[datetime, Meta(tz=True, description="ISO 8601 with an offset (Z or +hh:mm), in the future")]


class EditBody(msgspec.Struct, forbid_unknown_fields=False):
    """``PATCH .../content/``: the new title, message or data (at least one; what is left out is unchanged)."""

    title: Annotated[str, Meta(min_length=1, max_length=MAX_TITLE, pattern=NO_NUL)] | UnsetType = UNSET
    message: Annotated[str, Meta(max_length=MAX_MESSAGE, pattern=NO_NUL)] | UnsetType = UNSET
    data: DataObject | UnsetType = UNSET

    def changes(self) -> dict[str, Any]:
        """The fields given, as ``edit`` takes them."""
        return {name: getattr(self, name) for name in ("title", "message", "data") if getattr(self, name) is not UNSET}


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


class BatchPath(msgspec.Struct):
    """A schedule call's path parameter: the ``batch_id`` its answer carried."""

    batch_id: Annotated[
        str,
        Meta(
            pattern=r"^[0-9]+x[0-9]+(-[0-9]+x[0-9]+)*$",
            description="as the schedule call answered it, e.g. 12x3 (a first id and a count per partition)",
        ),
    ]


class SocketQuery(msgspec.Struct):
    """``/ws``'s query parameters."""

    token: Annotated[str, Meta(description="the token, for browsers that cannot set Authorization")] | UnsetType = UNSET
    since: Annotated[str, Meta(description="the last stream_id received: what was missed comes first")] | UnsetType = (
        UNSET
    )
    unread: (
        Annotated[
            str, Meta(description="1: the inbox's unread count is sent after ready, and again whenever it changes")
        ]
        | UnsetType
    ) = UNSET


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
contact_decoder = loose_decoder(ContactBody)
erasure_decoder = loose_decoder(ErasureBody)
pause_decoder = loose_decoder(PauseBody)
edit_decoder = loose_decoder(EditBody)


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


class RecurringBody(msgspec.Struct, forbid_unknown_fields=False):
    """``POST /api/recurring``: a recurring schedule; each occurrence is one notification per recipient."""

    recipients: Annotated[list[Recipient], Meta(min_length=1, max_length=MAX_RECIPIENTS)]
    title: Annotated[str, Meta(min_length=1, max_length=MAX_TITLE, pattern=NO_NUL)]
    message: Annotated[str, Meta(max_length=MAX_MESSAGE, pattern=NO_NUL)]
    cron: (
        Annotated[
            str,
            Meta(
                description="5 fields: minute hour day-of-month month day-of-week, e.g. '0 9 * * MON-FRI' "
                "(give cron or every_s)",
                extra_json_schema={"format": "cron"},
            ),
        ]
        | UnsetType
    ) = UNSET
    every_s: (
        Annotated[
            float, Meta(ge=1, le=MAX_EVERY_MS / 1000, description="an interval in seconds (give cron or every_s)")
        ]
        | UnsetType
    ) = UNSET
    timezone: Annotated[
        str,
        Meta(
            description="IANA zone whose wall clock the cron rule reads, e.g. 'Europe/Berlin'",
            extra_json_schema={"format": "iana-zone"},
        ),
    ] = "UTC"
    start_at: Annotated[datetime, Meta(tz=True, description="no occurrence before this (default: now)")] | None = None
    end_at: Annotated[datetime, Meta(tz=True, description="no occurrence after this (default: none)")] | None = None
    max_count: (
        Annotated[int, Meta(ge=1, le=2**63 - 1, description="at most this many occurrences (default: no limit)")]
        # JSON has one number type: 7.0 is the integer 7 (checked in the handler)
        | Annotated[float, Meta(ge=1, le=2**63 - 1, multiple_of=1, description="a whole number: 7.0 is 7")]
        | None
    ) = None
    catch_up: Annotated[
        str,
        Meta(
            description="times missed in an outage: skip them (default), or fire the last one once",
            extra_json_schema={"enum": ["skip", "last"]},
        ),
    ] = "skip"
    type: Annotated[str, Meta(min_length=1, max_length=MAX_TYPE, pattern=NO_NUL)] = "system"
    priority: Annotated[str, Meta(extra_json_schema={"enum": list(PRIORITIES)})] = "normal"
    data: DataObject | None = None
    channels: (
        Annotated[
            list[str],
            Meta(
                description="how each occurrence leaves; default: the server's default channels",
                extra_json_schema={"uniqueItems": True},
            ),
        ]
        | None
    ) = None


class RecurringPath(msgspec.Struct):
    """A recurring schedule's path parameter."""

    id: Annotated[int, Meta(ge=0)]


class RecurringListQuery(msgspec.Struct):
    """``GET /api/recurring``'s query parameters."""

    limit: Annotated[int, Meta(ge=1, le=MAX_LIMIT, description="page size")] = DEFAULT_LIMIT
    cursor: Annotated[int, Meta(ge=0, le=MAX_ID, description="next_cursor of the previous page")] | UnsetType = UNSET
    created_by: (
        Annotated[UserId, Meta(description="only schedules this user created (yourself unless admin)")] | UnsetType
    ) = UNSET


class PreviewQuery(msgspec.Struct):
    """``GET /api/recurring/{id}/preview``'s query parameters."""

    count: Annotated[int, Meta(ge=1, le=1000, description="how many times to show")] = 10


recurring_decoder = loose_decoder(RecurringBody)
