"""The shapes of the dashboard's endpoints: query parameters, bodies and answers, as msgspec Structs from which
``openapi`` generates their part of the document (so it cannot drift from what is served)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ...engine.presence import Presence
from ...engine.processes import Kind, ProcessState
from ...engine.tables import MAX_ROWS, SEARCH_WITHIN
from ...engine.validation import MAX_ID
from ...models import Notification, Page, ms_to_datetime
from ..bodies import DEFAULT_LIMIT, MAX_LIMIT, NO_NUL, Time, UserId, loose_decoder
from ..views import NotificationView

MAX_REQUEUE_IDS = 1000
MAX_MINUTES = 1440
TableName = Literal["upcoming", "processing", "retrying", "failed", "sent", "cancelled"]
CURSOR_PATTERN = r"^\d{1,16}:-?\d{1,20}:\d{1,9}$"


class TableRow(NotificationView, kw_only=True):
    """One notification of a table, as an admin reads it, with the time that places it there."""

    at: Annotated[
        datetime,
        Meta(
            tz=True,
            description="upcoming and retrying: when it is due; processing: its lease deadline; failed, sent and "
            "cancelled: when its record is purged",
        ),
    ]
    partition: int


class TablePage(msgspec.Struct):
    """One page of a table."""

    table: TableName
    items: list[TableRow]
    next_cursor: (
        Annotated[
            str,
            Meta(
                description="pass as ?cursor= for the next page; null only when nothing more is there (a page of "
                "retrying may be short, even empty, before that)"
            ),
        ]
        | None
    )


class TablePath(msgspec.Struct):
    """A table's path parameter."""

    table: Annotated[
        TableName,
        Meta(
            description="upcoming and retrying (pending; retrying: after a failed attempt), soonest due first; "
            "processing, soonest lease deadline first; failed (the dead letters), sent and cancelled, newest first"
        ),
    ]


class TableQuery(msgspec.Struct):
    """``GET /api/tables/{table}/``'s query parameters."""

    limit: Annotated[int, Meta(ge=1, le=MAX_ROWS, description="page size")] = 50
    cursor: Annotated[str, Meta(pattern=CURSOR_PATTERN, description="next_cursor of the previous page")] | UnsetType = (
        UNSET
    )
    partition: Annotated[int, Meta(ge=0, le=1023, description="only this partition")] | UnsetType = UNSET


class ProcessView(msgspec.Struct, kw_only=True):
    """A worker or gateway process, from its last heartbeat."""

    id: str
    kind: Annotated[Kind, Meta(description="serve: API, gateway and worker in one process; gateway: serve --no-worker")]
    host: str
    pid: int
    started_at: Time
    version: str
    partitions: list[int]
    in_flight: Annotated[int, Meta(description="notifications it is delivering now")]
    sockets: Annotated[int, Meta(description="WebSockets open (gateways)")] | None
    last_beat_at: Time
    age_ms: Annotated[int, Meta(description="how long ago its last heartbeat arrived, by the Redis server's clock")]
    beat_every_ms: int
    late: Annotated[bool, Meta(description="its last heartbeat is more than three intervals old")]


class ProcessList(msgspec.Struct):
    """Every process that beat in the last ten minutes."""

    processes: list[ProcessView]


IdNumber = (
    Annotated[int, Meta(ge=0, le=MAX_ID)]
    # JSON has one number type: 7.0 is the id 7
    | Annotated[float, Meta(ge=0, le=MAX_ID, multiple_of=1, description="a whole number: 7.0 is 7")]
)


class RequeueBody(msgspec.Struct, forbid_unknown_fields=False):
    """``POST /api/dead/requeue/``: the dead letters to make due now, by id, or all of them."""

    ids: Annotated[list[IdNumber], Meta(max_length=MAX_REQUEUE_IDS)] | None = None
    all: Annotated[bool, Meta(description="every dead letter (then leave ids out)")] = False


class Requeued(msgspec.Struct):
    """What a requeue did: the ids now due again, and those that were not dead letters."""

    requeued: list[int]
    missing: list[int]


class MinuteView(msgspec.Struct, kw_only=True):
    """One minute's deliveries over every worker."""

    start: Time
    sent: int
    retried: int
    failed: Annotated[int, Meta(description="failed for good (to the dead letters)")]
    p50_ms: Annotated[int, Meta(description="median lateness (due -> sent), a bucket's upper bound")] | None
    p99_ms: Annotated[int, Meta(description="99th percentile lateness, a bucket's upper bound")] | None


class Throughput(msgspec.Struct):
    """The last minutes' deliveries and lateness, oldest first (the current minute last, still filling)."""

    minutes: list[MinuteView]


class ThroughputQuery(msgspec.Struct):
    """``GET /api/throughput``'s query parameters."""

    minutes: Annotated[int, Meta(ge=1, le=MAX_MINUTES, description="how many minutes back (a day is kept)")] = 60


class TitleSearch(msgspec.Struct):
    """Notifications whose title contains the text, newest first, among the most recent ``examined``."""

    items: list[NotificationView]
    examined: Annotated[int, Meta(description=f"how many of the most recent were searched (at most {SEARCH_WITHIN})")]


class SearchQuery(msgspec.Struct):
    """``GET /api/search``'s query parameters."""

    title: Annotated[
        str, Meta(min_length=1, max_length=200, pattern=NO_NUL, description="text the title contains, any case")
    ]
    limit: Annotated[int, Meta(ge=1, le=MAX_ROWS, description="most matches")] = 50


class Me(msgspec.Struct):
    """Who the token belongs to and what it may do."""

    user: str
    admin: bool
    scopes: list[str]


class GatewaySockets(msgspec.Struct, kw_only=True):
    """The sockets one recipient has open on one gateway process, as of its last heartbeat."""

    process: Annotated[str, Meta(description="the gateway's process id, as GET /api/processes lists it")]
    host: str
    pid: int
    sockets: int
    last_beat_at: Time
    late: Annotated[bool, Meta(description="its heartbeat is overdue: its sockets are not counted in the total")]


class RecipientView(msgspec.Struct, kw_only=True):
    """What one recipient was sent, received and read, newest first, and their open WebSockets."""

    recipient: str
    sockets: Annotated[
        int,
        Meta(
            description="WebSockets open over every gateway whose heartbeat is on time, as of each one's last "
            "heartbeat (ZSCHED_BEAT_EVERY_S, 5 s)"
        ),
    ]
    gateways: Annotated[list[GatewaySockets], Meta(description="each gateway where they have a socket open")]
    listed: Annotated[int, Meta(description="notifications on this page")]
    sent: Annotated[int, Meta(description="of those, how many were handed to their channels (scheduled_status sent)")]
    received: Annotated[
        int, Meta(description="of those, how many a client of theirs acknowledged receiving (delivered_at is set)")
    ]
    read: Annotated[int, Meta(description="of those, how many they marked read (read_at is set)")]
    items: list[NotificationView]
    next_cursor: (
        Annotated[int, Meta(description="pass as ?cursor= for the next page; null only when nothing more matches")]
        | None
    )


class RecipientQuery(msgspec.Struct):
    """``GET /api/recipient``'s query parameters."""

    recipient: (
        Annotated[UserId, Meta(description="whose view (only yourself unless admin); default: yourself")] | UnsetType
    ) = UNSET
    limit: Annotated[int, Meta(ge=1, le=MAX_LIMIT, description="page size")] = DEFAULT_LIMIT
    cursor: Annotated[int, Meta(ge=0, le=MAX_ID, description="next_cursor of the previous page")] | UnsetType = UNSET


def recipient_view(page: Page, presence: Presence, shown: Callable[[Notification], NotificationView]) -> RecipientView:
    """A recipient's view as the API shows it: a page of their notifications (each as ``shown`` renders it for
    the caller) and their sockets."""
    return RecipientView(
        recipient=presence.recipient,
        sockets=presence.sockets,
        gateways=gateway_sockets(presence),
        listed=len(page.items),
        sent=sum(n.scheduled_status == "sent" for n in page.items),
        received=sum(n.delivered_at is not None for n in page.items),
        read=sum(n.read_at is not None for n in page.items),
        items=[shown(n) for n in page.items],
        next_cursor=page.next_cursor,
    )


def gateway_sockets(presence: Presence) -> list[GatewaySockets]:
    """Where a recipient's sockets are open, as the API shows it."""
    return [
        GatewaySockets(
            process=c.process_id,
            host=c.host,
            pid=c.pid,
            sockets=c.sockets,
            last_beat_at=ms_to_datetime(c.last_beat_ms),
            late=c.late,
        )
        for c in presence.connections
    ]


requeue_decoder = loose_decoder(RequeueBody)
REQUEUE_CHOICE = [  # what no Python type says: ids (at least one), or all=true, never both
    {"required": ["ids"], "properties": {"ids": {"type": "array", "minItems": 1}, "all": {"const": False}}},
    {
        "required": ["all"],
        "properties": {"all": {"const": True}, "ids": {"anyOf": [{"type": "null"}, {"maxItems": 0}]}},
    },
]


def process_view(state: ProcessState) -> ProcessView:
    """A process as the API shows it."""
    info = state.info
    return ProcessView(
        id=info.id,
        kind=info.kind,
        host=info.host,
        pid=info.pid,
        started_at=ms_to_datetime(info.started_ms),
        version=info.version,
        partitions=info.partitions,
        in_flight=info.in_flight,
        sockets=info.sockets,
        last_beat_at=ms_to_datetime(state.last_beat_ms),
        age_ms=state.age_ms,
        beat_every_ms=info.beat_every_ms,
        late=state.late,
    )
