"""The HTTP endpoints behind the dashboard (admin, but ``/api/me`` and a user's own ``/api/recipient``): its tables,
processes, per-minute figures, title search, the recipient view, and the requeue of dead letters; their shapes are
in ``shapes``.

They are part of the HTTP API and of its OpenAPI document; the page itself (``page``) only calls them. A user
token sees its own notifications through ``GET /api/notifications/`` instead, by the same rules as everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...engine import requeue_dead, validation
from ...engine.minutes import read_minutes
from ...engine.processes import list_processes
from ...engine.tables import MAX_ROWS, TABLES, search_titles, table_page
from ...engine.validation import MAX_ID
from ...models import ms_to_datetime
from ..auth import Principal
from ..bodies import DEFAULT_LIMIT, MAX_LIMIT, integral, parse_int
from ..errors import JSON, ApiError, read_json
from ..views import full_view, viewer
from .shapes import (
    MAX_MINUTES,
    MAX_REQUEUE_IDS,
    Me,
    MinuteView,
    ProcessList,
    RequeueBody,
    Requeued,
    TablePage,
    TableRow,
    Throughput,
    TitleSearch,
    process_view,
    recipient_view,
    requeue_decoder,
)

if TYPE_CHECKING:
    from ..api import Api


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
            Route("/api/recipient", self.recipient, methods=["GET"]),
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

    async def recipient(self, request: Request) -> Response:
        """GET (admin, or the recipient themself): what one recipient was sent and received, newest first, and
        how many WebSockets they have open on which gateways."""
        principal = await self.api.authenticate(request)
        query = request.query_params
        who = validation.recipient(query.get("recipient", principal.user))
        if not (principal.admin or who == principal.user):
            raise ApiError(
                403,
                f"you may see only your own recipient view ({principal.user!r}); got {who[:128]!r}. Others' need "
                "an admin token",
                "recipient",
            )
        limit = parse_int(query.get("limit"), "limit", 1, MAX_LIMIT)
        cursor = parse_int(query.get("cursor"), "cursor", 0, MAX_ID)
        zs = self.api.zs
        page = await zs.list(recipient=who, limit=DEFAULT_LIMIT if limit is None else limit, cursor=cursor)
        presence = await zs.sockets(who)
        return JSON(recipient_view(page, presence, lambda n: full_view(n, viewer(principal, n))))

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
