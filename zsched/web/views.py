"""The HTTP API's answers, as msgspec Structs, and how much of a notification each caller is shown.

``openapi`` generates the document from these types (and ``bodies``' requests), so it cannot drift from what is
served. A recipient is told a failure's generic reason; its creator the error, with no URL path, query or
credentials; an admin also what the receiver answered.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ..models import Notification, OnLate, Pauses, ScheduleResult, Stats, Status, TemplateRef
from .auth import Principal
from .bodies import Time
from .errors import Error

Viewer = Literal["recipient", "creator", "admin"]
"""Who reads a notification, which decides how much of a failure it is told."""

_LEGACY_BODY = re.compile(r"(; expected 2xx): .*", re.S)  # 0.1's webhook error: the response body followed
_URL_TAIL = re.compile(r"(\w+://)(?:[^\s/?#@'\"]*@)?([^\s/?#'\"]+)[^\s'\"]*")


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
    batch_id: Annotated[
        str, Meta(description="names the whole call for /api/batches/{batch_id}/: status, reschedule, cancel")
    ] = ""
    batch_ids: Annotated[
        list[str],
        Meta(
            description="with deliver_at_local or quiet hours giving recipients different due times: one batch "
            "per due time (batch_id is the first; scheduled_at the earliest)"
        ),
    ] = msgspec.field(default_factory=list)

    @classmethod
    def of(cls, result: ScheduleResult) -> Scheduled:
        """The answer for ``result``."""
        return cls(result.notification_ids, result.count, result.scheduled_at, result.batch_id, result.batch_ids)


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
            description="each channel's outcome: 'sent', 'pending', 'cancelled', 'expired', 'collapsed', "
            "'throttled', 'skipped' (its recipient opted out of that channel for its type), or 'failed' (for the "
            "creator and admins 'failed: <why>', as last_error)"
        ),
    ]
    expires_at: Annotated[datetime, Meta(tz=True, description="not sent when claimed at or after this")] | None
    on_late: Annotated[
        OnLate,
        Meta(
            description="skip: not sent when claimed more than late_after_ms past its due time; send: sent however late"
        ),
    ]
    late_after_ms: Annotated[int, Meta(description="with on_late skip: how late is too late")] | None
    collapse_key: (
        Annotated[str, Meta(description="a newer pending notification for this recipient and key collapses this one")]
        | None
    )
    expired_at: Time | None
    collapsed_at: Time | None
    read_at: Annotated[datetime, Meta(tz=True, description="when its recipient marked it read")] | None = None
    template: (
        Annotated[
            TemplateRef,
            Meta(
                description="the template (and version, and context) it is rendered from when sent; title and "
                "message are then the schedule-time preview in the template's fallback locale"
            ),
        ]
        | None
    ) = None
    throttled_at: Time | None = None
    skipped_at: (
        Annotated[
            datetime,
            Meta(tz=True, description="when it ended skipped: its recipient opted out of every channel it names"),
        ]
        | None
    ) = None
    opted_out: Annotated[
        list[str], Meta(description="the channels its recipient opted out of for its type: not sent through them")
    ] = msgspec.field(default_factory=list)
    digest_key: (
        Annotated[str, Meta(description="sent in one digest with its recipient's others of this key due in its window")]
        | None
    ) = None
    digest_window_ms: Annotated[int, Meta(description="how long a digest it opens stays open")] | None = None
    digest_max: Annotated[int, Meta(description="most members of a digest it opens")] | None = None
    digest: (
        Annotated[
            int,
            Meta(
                description="the digest that holds it (pending: waiting to go out with the others) or carried it "
                "(sent): the id of the digest's first member, which the delivered message carries"
            ),
        ]
        | None
    ) = None


VIEWED = tuple(
    f for f in NotificationView.__struct_fields__ if f in Notification.__struct_fields__ and not f.startswith("last_")
)
"""The fields ``full_view`` copies from the notification as they are (the errors depend on who reads)."""
UNVIEWED = ("done", "channel_errors", "html")
"""Notification fields no view shows as they are (``deliveries`` tells them; ``html`` exists only while sent)."""


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
    """Counts, totals, next due and lag, overall and per partition; ``totals.dead_dropped`` counts the dead letters
    dropped because a partition's dead set was over its cap."""

    partitions: list[PartitionStats]
    max_dead: Annotated[
        int,
        Meta(
            description="the dead-letter cap per partition this server is configured with (ZSCHED_MAX_DEAD; 0: none); "
            "workers apply their own setting"
        ),
    ] = 0


class PausesView(Pauses, kw_only=True):
    """What delivery is paused for (``all``: everything; ``types``), since when per scope (``*`` or the type),
    and how many notifications of paused types wait aside (``parked``)."""


class ContactView(msgspec.Struct, kw_only=True):
    """A recipient's contact data; null where not set."""

    recipient: str
    email: str | None
    phone: Annotated[str, Meta(description="E.164")] | None
    locale: Annotated[str, Meta(description="BCP 47")] | None
    zone: Annotated[str, Meta(description="IANA time zone")] | None = None
    quiet_hours: Annotated[str, Meta(description="HH:MM-HH:MM in the zone")] | None = None
    opt_outs: Annotated[
        dict[str, list[str]],
        Meta(
            description="channel -> the notification types not sent through it ('*': every type; channel '*': "
            'every channel), e.g. {"sms": ["marketing"]}; applied when each notification is sent'
        ),
    ] = msgspec.field(default_factory=dict)


class ErasureView(msgspec.Struct, kw_only=True):
    """What an erasure removed: the recipient's contact data (whether there was any) and their inbox entries."""

    recipient: str
    contact_removed: bool
    inbox_entries_removed: int


class Health(msgspec.Struct):
    """A liveness or readiness answer."""

    status: str


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
    if n.scheduled_status == "skipped":  # the recipient's own opt-out: theirs to read
        return n.last_error
    if n.scheduled_status == "failed":
        return "delivery failed for good"
    if n.scheduled_status in ("pending", "processing"):
        return "delivery failed; it will be retried"
    return "an earlier delivery attempt failed"


def deliveries(n: Notification, who: Viewer) -> dict[str, str]:
    """Each channel's outcome ("sent", "pending", "failed: <why>"), for the channels the notification names
    or an attempt recorded; why as ``failure`` lets ``who`` read it (a recipient gets "failed" alone)."""
    names = n.channels or sorted({*n.done, *n.channel_errors, *n.opted_out})
    out: dict[str, str] = {}
    for name in names:
        error = n.channel_errors.get(name) or (n.last_error if len(names) == 1 else None)
        if name in n.opted_out:
            out[name] = "skipped"
        elif n.scheduled_status == "sent" or name in n.done:
            out[name] = "sent"
        elif n.scheduled_status in ("cancelled", "expired", "collapsed", "throttled", "skipped"):
            out[name] = n.scheduled_status
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


class Previews(msgspec.Struct):
    """The next times a recurring schedule fires, from now."""

    times: list[Time]
