"""The HTTP endpoints behind the dashboard's tables and process list, and the bulk requeue of dead letters (admin).

They are part of the HTTP API and of its OpenAPI document; the page itself (``page``) only calls them. A user
token sees its own notifications through ``GET /api/notifications/`` instead, by the same rules as everywhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...engine import requeue_dead
from ...engine.minutes import read_minutes
from ...engine.processes import Kind, ProcessState, list_processes
from ...engine.tables import MAX_ROWS, SEARCH_WITHIN, TABLES, search_titles, table_page
from ...engine.validation import MAX_ID
from ...models import ms_to_datetime
from ..auth import Principal
from ..bodies import NO_NUL, Time, integral, loose_decoder, parse_int
from ..errors import JSON, ApiError, read_json
from ..views import NotificationView, full_view

if TYPE_CHECKING:
    from ..api import Api

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


requeue_decoder = loose_decoder(RequeueBody)
REQUEUE_CHOICE = [  # what no Python type says: ids (at least one), or all=true, never both
    {"required": ["ids"], "properties": {"ids": {"type": "array", "minItems": 1}, "all": {"const": False}}},
    {
        "required": ["all"],
        "properties": {"all": {"const": True}, "ids": {"anyOf": [{"type": "null"}, {"maxItems": 0}]}},
    },
]


class DashboardApi:
    """The handlers, over the API's authentication and scheduler."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def routes(self) -> list[BaseRoute]:
        """Every route these endpoints serve."""
        return [
            Route("/api/me", self.me, methods=["GET"]),
            Route("/api/tables/{table}/", self.table, methods=["GET"]),
            Route("/api/processes", self.processes, methods=["GET"]),
            Route("/api/throughput", self.throughput, methods=["GET"]),
            Route("/api/search", self.search, methods=["GET"]),
            Route("/api/dead/requeue/", self.requeue, methods=["POST"]),
        ]

    async def admin(self, request: Request, what: str) -> Principal:
        """The caller, who must hold an admin token (403 otherwise)."""
        principal = await self.api.authenticate(request)
        if not principal.admin:
            raise ApiError(403, f"{what} need an admin token (`zsched token create --user ID --admin`)")
        return principal

    async def me(self, request: Request) -> Response:
        """GET: the caller's user, whether it is an admin, its scopes (what the page shows it)."""
        principal = await self.api.authenticate(request)
        return JSON(Me(principal.user, principal.admin, list(principal.scopes)))

    async def table(self, request: Request) -> Response:
        """GET (admin): one page of a table."""
        await self.admin(request, "tables")
        name = request.path_params["table"]
        if name not in TABLES:
            raise ApiError(404, f"no table {name[:40]!r}; the tables are {', '.join(TABLES)}", "table")
        query = request.query_params
        limit = parse_int(query.get("limit"), "limit", 1, MAX_ROWS)
        zs = self.api.zs
        count = len(zs.core.keys.partitions)
        partition = parse_int(query.get("partition"), "partition", 0, 1023)
        if partition is not None and partition >= count:
            raise ApiError(404, f"no partition {partition}: this keyspace has {count} (0 to {count - 1})", "partition")
        page = await zs.run(
            table_page(
                zs.core, name, cursor=query.get("cursor"), limit=50 if limit is None else limit, partition=partition
            )
        )
        items = [
            TableRow(
                **msgspec.structs.asdict(full_view(r.notification, "admin")),
                at=ms_to_datetime(r.at_ms),
                partition=r.partition,
            )
            for r in page.rows
        ]
        return JSON(TablePage(name, items, page.next_cursor))

    async def processes(self, request: Request) -> Response:
        """GET (admin): every worker and gateway, from its heartbeat."""
        await self.admin(request, "processes")
        zs = self.api.zs
        states = await zs.run(list_processes(zs.core))
        return JSON(ProcessList([process_view(s) for s in states]))

    async def throughput(self, request: Request) -> Response:
        """GET (admin): deliveries and lateness per minute over every worker, for the last ``minutes``."""
        await self.admin(request, "throughput figures")
        minutes = parse_int(request.query_params.get("minutes"), "minutes", 1, MAX_MINUTES)
        zs = self.api.zs
        got = await zs.run(read_minutes(zs.core, 60 if minutes is None else minutes))
        return JSON(
            Throughput(
                [
                    MinuteView(
                        start=ms_to_datetime(m.start_ms),
                        sent=m.sent,
                        retried=m.retried,
                        failed=m.failed,
                        p50_ms=m.p50_ms,
                        p99_ms=m.p99_ms,
                    )
                    for m in got
                ]
            )
        )

    async def search(self, request: Request) -> Response:
        """GET (admin): the newest notifications whose title contains ``title``, among the most recent 10,000."""
        await self.admin(request, "title searches")
        query = request.query_params
        title = query.get("title")
        if title is None or "\x00" in title:
            raise ApiError(422, "title is required: the text to find in titles (no NUL)", "title")
        limit = parse_int(query.get("limit"), "limit", 1, MAX_ROWS)
        zs = self.api.zs
        found = await zs.run(search_titles(zs.core, title, limit=50 if limit is None else limit))
        return JSON(TitleSearch([full_view(n, "admin") for n in found.items], found.examined))

    async def requeue(self, request: Request) -> Response:
        """POST (admin): make dead letters due now with fresh attempts: the ids given, or all of them."""
        await self.admin(request, "requeueing dead letters")
        body: RequeueBody = await read_json(request, requeue_decoder)
        given = [integral(i) for i in body.ids or []]
        ids = [i for i in given if isinstance(i, int)]
        if len(ids) != len(given):
            raise ApiError(422, "ids must be whole numbers (notification ids)", "ids")
        if body.all == bool(ids):
            raise ApiError(
                422, f"give ids or all=true (one of the two); got {len(ids)} id(s) and all={body.all}", "ids"
            )
        if len(ids) > MAX_REQUEUE_IDS:
            raise ApiError(422, f"ids takes at most {MAX_REQUEUE_IDS} ids; got {len(ids)}", "ids")
        zs = self.api.zs
        done: list[int] = await zs.run(requeue_dead(zs.core, ids, everything=body.all))
        return JSON(Requeued(sorted(done), sorted(set(ids) - set(done))))


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
