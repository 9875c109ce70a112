"""The notification and the values zsched stores and sends, as msgspec Structs.

What Redis holds per notification is split in two: the payload (what the user wrote; never parsed by
Lua, so user data cannot be mangled by a Lua JSON round trip) and the state (what the scripts change).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

Priority = Literal["low", "normal", "high", "urgent"]
Status = Literal["pending", "processing", "sent", "cancelled", "failed", "expired", "collapsed", "throttled", "skipped"]
OnLate = Literal["send", "skip"]
PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
STATUSES: tuple[str, ...] = (
    "pending",
    "processing",
    "sent",
    "cancelled",
    "failed",
    "expired",
    "collapsed",
    "throttled",
    "skipped",
)
TERMINAL_STATUSES: tuple[str, ...] = ("sent", "cancelled", "failed", "expired", "collapsed", "throttled", "skipped")
"""The statuses a notification never leaves; purge removes their records after retention."""
ON_LATE: tuple[str, ...] = ("send", "skip")


def ms_to_datetime(ms: int) -> datetime:
    """An epoch-milliseconds timestamp as an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def datetime_to_ms(value: datetime) -> int:
    """An aware datetime as epoch milliseconds."""
    return round(value.timestamp() * 1000)


class TemplateRef(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The template a notification is rendered from at send time: its name, the version it was scheduled with
    (a pending notification keeps it), and the context given then."""

    name: str
    version: int
    context: dict[str, Any] = msgspec.field(default_factory=dict)


class Payload(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    """What the caller wrote; stored once per notification and never changed."""

    title: str
    message: str
    type: str = "system"
    priority: Priority = "normal"
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    created_by: str | None = None
    channels: list[str] = msgspec.field(default_factory=list)
    # Expiry and collapse (claim.lua and schedule.lua read these members by name, without decoding the payload):
    collapse_key: str | None = None  # a newer pending one for the same recipient and key collapses this one
    expires_at: int | None = None  # epoch ms: claimed at or after it, it ends expired instead of being sent
    on_late: OnLate = "send"
    late_after_ms: int | None = None  # with on_late "skip": claimed later than this past its due time, it expires
    # Rendered by the worker at send time (title and message above are then the schedule-time preview in the
    # template's fallback locale); its presence also keeps claim.lua from delivering it unrendered.
    template: TemplateRef | None = None
    spread_ms: int | None = None  # a call's recipients are due spread evenly over this long after its due time
    # Digests (claim.lua hands a payload naming digest_key to the worker, which joins it to its recipient's open
    # digest for that key): the window a digest it opens stays open, and how many members it takes at most.
    digest_key: str | None = None
    digest_window_ms: int | None = None
    digest_max: int | None = None


class State(msgspec.Struct, omit_defaults=True):
    """What the scripts change: status, attempts and the times it moved (all epoch ms)."""

    status: Status
    recipient: str
    scheduled_at: int
    created_at: int
    attempts: int = 0
    lease_until: int | None = None
    sent_at: int | None = None
    cancelled_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    collapsed_at: int | None = None
    throttled_at: int | None = None
    skipped_at: int | None = None
    last_error: str | None = None
    last_error_detail: str | None = None  # what the channel's peer answered: admins only
    delivered_at: int | None = None
    created_by: str | None = None  # also in the payload; here so the scripts can keep its index and counts
    priority: Priority = "normal"  # also in the payload; here so the scripts pick its due set (normal: omitted)
    call: int | None = None  # the many-recipient call whose payload it shares (stored under the call's id)
    # Recorded only for notifications sent through more than one channel, when an attempt failed:
    done: list[str] = msgspec.field(default_factory=list)  # channels that succeeded; a retry skips them
    channel_errors: dict[str, str] = msgspec.field(default_factory=dict)  # channel -> its last failure
    read_at: int | None = None  # when its recipient marked it read
    opted_out: list[str] = msgspec.field(default_factory=list)  # channels its recipient opted out of, not sent
    digest: int | None = None  # the digest (its first member's id) that holds or carried it (join_digest.lua)


class Notification(msgspec.Struct, kw_only=True):
    """One notification for one recipient, as a caller sees it."""

    id: int
    recipient: str
    title: str
    message: str
    type: str = "system"
    priority: Priority = "normal"
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    channels: list[str] = msgspec.field(default_factory=list)
    scheduled_at: datetime
    scheduled_status: Status
    attempts: int = 0
    created_at: datetime
    sent_at: datetime | None = None
    cancelled_at: datetime | None = None
    failed_at: datetime | None = None
    last_error: str | None = None
    last_error_detail: str | None = None  # e.g. a webhook's response body; the HTTP API shows it to admins only
    created_by: str | None = None
    delivered_at: datetime | None = None
    done: list[str] = msgspec.field(default_factory=list)  # channels already delivered by an earlier attempt
    channel_errors: dict[str, str] = msgspec.field(default_factory=dict)  # failed channel -> its last failure
    expires_at: datetime | None = None  # not sent when claimed at or after this
    on_late: OnLate = "send"  # skip: not sent when claimed more than late_after_ms past its due time
    late_after_ms: int | None = None
    collapse_key: str | None = None  # a newer pending one for this recipient and key collapses it
    expired_at: datetime | None = None
    collapsed_at: datetime | None = None
    template: TemplateRef | None = None  # rendered from this template at send time
    html: str | None = None  # the rendered HTML body, set by the worker for a template that has one
    read_at: datetime | None = None  # when its recipient marked it read
    throttled_at: datetime | None = None
    skipped_at: datetime | None = None  # every channel it names was opted out of by its recipient: not sent
    opted_out: list[str] = msgspec.field(default_factory=list)  # channels its recipient opted out of, not sent
    digest_key: str | None = None  # sent in one digest with its recipient's others of this key due in the window
    digest_window_ms: int | None = None  # how long a digest it opens stays open
    digest_max: int | None = None  # most members of a digest it opens
    digest: int | None = None  # the digest holding it (pending) or that carried it (sent): its first member's id

    @property
    def is_sent(self) -> bool:
        """Whether it has been delivered."""
        return self.scheduled_status == "sent"

    @classmethod
    def from_stored(cls, notification_id: int, state: State, payload: Payload) -> Notification:
        """Join the stored state and payload into one view."""
        return cls(
            id=notification_id,
            recipient=state.recipient,
            title=payload.title,
            message=payload.message,
            type=payload.type,
            priority=payload.priority,
            data=payload.data,
            channels=payload.channels,
            scheduled_at=ms_to_datetime(state.scheduled_at),
            scheduled_status=state.status,
            attempts=state.attempts,
            created_at=ms_to_datetime(state.created_at),
            sent_at=_maybe_datetime(state.sent_at),
            cancelled_at=_maybe_datetime(state.cancelled_at),
            failed_at=_maybe_datetime(state.failed_at),
            last_error=state.last_error,
            last_error_detail=state.last_error_detail,
            created_by=payload.created_by,
            delivered_at=_maybe_datetime(state.delivered_at),
            done=state.done,
            channel_errors=state.channel_errors,
            expires_at=_maybe_datetime(payload.expires_at),
            on_late=payload.on_late,
            late_after_ms=payload.late_after_ms,
            collapse_key=payload.collapse_key,
            expired_at=_maybe_datetime(state.expired_at),
            collapsed_at=_maybe_datetime(state.collapsed_at),
            template=payload.template,
            read_at=_maybe_datetime(state.read_at),
            throttled_at=_maybe_datetime(state.throttled_at),
            skipped_at=_maybe_datetime(state.skipped_at),
            opted_out=state.opted_out,
            digest_key=payload.digest_key,
            digest_window_ms=payload.digest_window_ms,
            digest_max=payload.digest_max,
            digest=state.digest,
        )


def _maybe_datetime(ms: int | None) -> datetime | None:
    return None if ms is None else ms_to_datetime(ms)


class ScheduleResult(msgspec.Struct):
    """The answer to a schedule call: one id per (distinct) recipient, in the order given, and the ``batch_id``
    that names them all for ``cancel_batch``, ``reschedule_batch`` and ``batch_status``. Recipients whose own
    clocks (zone, quiet hours) gave them different due times are scheduled in one call per due time: then
    ``batch_ids`` names each (``batch_id`` is the first), and ``scheduled_at`` is the earliest."""

    notification_ids: list[int]
    count: int
    scheduled_at: datetime
    replayed: bool = False
    batch_id: str = ""
    batch_ids: list[str] = msgspec.field(default_factory=list)


class BatchChange(msgspec.Struct):
    """What a whole-call cancel or reschedule did: how many notifications it changed, how many were no longer
    pending (left as they are), and how many are gone (purged) or not yours to change."""

    batch_id: str
    changed: int
    not_pending: int
    missing: int


class BatchSummary(msgspec.Struct):
    """Where a schedule call's notifications are: how many of them in each status (purged ones count nowhere)."""

    batch_id: str
    count: int
    counts: dict[str, int]


RecurringStatus = Literal["active", "paused", "finished"]


class RecurringSchedule(msgspec.Struct, kw_only=True):
    """A recurring schedule as a caller sees it: its rule (``cron`` in ``timezone``, or ``every_s``), bounds, the
    notification each occurrence is, and where it stands. ``next_at`` is the time of its latest occurrence
    (pending until then); ``occurrence_ids`` are that occurrence's notification ids, one per recipient."""

    id: int
    status: RecurringStatus
    cron: str | None = None
    every_s: float | None = None
    timezone: str = "UTC"
    start_at: datetime
    end_at: datetime | None = None
    max_count: int | None = None
    catch_up: str = "skip"
    count: int = 0
    next_at: datetime | None = None
    occurrence_ids: list[int] = msgspec.field(default_factory=list)
    recipients: list[str]
    title: str
    message: str
    type: str = "system"
    priority: Priority = "normal"
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    channels: list[str] = msgspec.field(default_factory=list)
    created_by: str | None = None
    created_at: datetime


class RecurringPage(msgspec.Struct):
    """One page of recurring schedules, by id; pass ``next_cursor`` for the next page (None: there is no more)."""

    items: list[RecurringSchedule]
    next_cursor: int | None


class Page(msgspec.Struct):
    """One page of notifications, newest first; pass ``next_cursor`` for the next page (None: there is no more)."""

    items: list[Notification]
    next_cursor: int | None


class Pauses(msgspec.Struct, kw_only=True):
    """What delivery is paused for: everything (``all``) and each paused type, since when (the scope's key:
    ``*`` or the type), and how many pending notifications of paused types wait aside (``parked``)."""

    all: bool = False
    types: list[str] = msgspec.field(default_factory=list)
    since: dict[str, datetime] = msgspec.field(default_factory=dict)
    parked: int = 0


class Stats(msgspec.Struct):
    """Counts per status, lifetime totals, how far behind the earliest due notification is, and the pauses."""

    counts: dict[str, int]
    totals: dict[str, int]
    next_due_at: datetime | None
    oldest_overdue_ms: int
    server_time: datetime
    paused: Pauses = msgspec.field(default_factory=Pauses)


class Delivered(msgspec.Struct, kw_only=True):
    """The JSON a delivery publishes: what a WebSocket client or webhook receives."""

    type: str = "notification"
    id: int
    recipient: str
    title: str
    message: str
    notification_type: str
    priority: str
    data: dict[str, Any]
    scheduled_at: datetime
    sent_at: datetime
    attempt: int

    @classmethod
    def of(cls, n: Notification, sent_at: datetime) -> Delivered:
        """The wire form of a notification delivered at ``sent_at``."""
        return cls(
            id=n.id,
            recipient=n.recipient,
            title=n.title,
            message=n.message,
            notification_type=n.type,
            priority=n.priority,
            data=n.data,
            scheduled_at=n.scheduled_at,
            sent_at=sent_at,
            attempt=n.attempts,
        )


class Contact(msgspec.Struct, kw_only=True):
    """How and when a recipient is reached; None where not set. ``phone`` is E.164 (``+14155550123``),
    ``locale`` a BCP 47 tag (``pt-BR``), ``zone`` an IANA zone (``Europe/Lisbon``), ``quiet_hours``
    ``HH:MM-HH:MM`` in that zone (UTC without one)."""

    recipient: str
    email: str | None = None
    phone: str | None = None
    locale: str | None = None
    zone: str | None = None
    quiet_hours: str | None = None
    opt_outs: dict[str, list[str]] = msgspec.field(default_factory=dict)
    """channel -> the notification types the recipient does not want through it (``*``: every type; channel
    ``*``: every channel), e.g. ``{"sms": ["marketing"]}``; respected when each notification is sent."""


class Erasure(msgspec.Struct, kw_only=True):
    """What a data-protection erasure removed for one recipient: their contact data (whether there was any) and
    the entries of their inbox."""

    recipient: str
    contact_removed: bool
    inbox_entries_removed: int


class TemplateVariant(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One locale's text of a template: Jinja2 sources for the title, the message and (optionally) an HTML body."""

    title: str
    message: str
    html: str | None = None


class Template(msgspec.Struct, kw_only=True):
    """One version of a named template: a variant per locale (BCP 47 tag) and the locale used when a recipient's
    has no variant. Versions are never changed: saving a template again makes the next one."""

    name: str
    version: int
    fallback_locale: str
    variants: dict[str, TemplateVariant]
    created_at: datetime


class Rendered(msgspec.Struct, kw_only=True):
    """A template rendered for one locale: which variant was used, and its title, message and HTML body."""

    locale: str
    title: str
    message: str
    html: str | None = None


class InboxItem(msgspec.Struct, kw_only=True):
    """One entry of a recipient's inbox: its stream id, whether it was read, and the notification as delivered
    (the JSON a WebSocket client receives)."""

    stream_id: str
    read: bool
    notification: dict[str, Any]


class Inbox(msgspec.Struct, kw_only=True):
    """One page of a recipient's inbox, newest first, and how many of the whole inbox are unread; pass
    ``next_before`` for the next page (None: there is no more)."""

    recipient: str
    unread: int
    items: list[InboxItem]
    next_before: str | None


class ReadMarks(msgspec.Struct, kw_only=True):
    """What marking read did: the unread count of the inbox now, and when each id named was read (the first mark
    wins); an id left out is unknown, not the recipient's, or not sent."""

    unread: int
    read_at: dict[int, datetime] = msgspec.field(default_factory=dict)


json_encoder = msgspec.json.Encoder()
state_decoder = msgspec.json.Decoder(State)
payload_decoder = msgspec.json.Decoder(Payload)
