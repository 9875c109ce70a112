"""The HTTP API: the seed's endpoints and what users of such an API expect, as Starlette routes.

Every ``/api/`` call is authenticated (``Authorization: Token <t>`` or ``Bearer <t>``), rate limited per
token, and authorized by ownership: a caller sees and changes only notifications it created or receives
(admins see all); anything else is 404, so existence does not leak. Errors are JSON, see ``errors``;
request bodies and response shapes are in ``bodies``.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from msgspec import UNSET
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from ..client import AsyncScheduler
from ..engine import validation
from ..engine.contacts import CHANGES, PREFERENCE_FIELDS
from ..errors import FieldError, NotFoundError, PendingLimitError, UnavailableError
from ..models import BatchChange, BatchSummary, Notification
from ..settings import ApiSettings
from . import docs_page, openapi
from .auth import Principal
from .bodies import (
    DEFAULT_LIMIT,
    MAX_IDEMPOTENCY_HEADER,
    MAX_LIMIT,
    ContactBody,
    EditBody,
    ErasureBody,
    PauseBody,
    RescheduleBody,
    ScheduleBody,
    contact_decoder,
    edit_decoder,
    erasure_decoder,
    integral,
    parse_int,
    pause_decoder,
    reschedule_decoder,
    schedule_decoder,
)
from .callers import Callers
from .errors import JSON, ApiError, read_json
from .liveness import Liveness
from .metrics import CONTENT_TYPE, Metrics
from .ratelimit import FailedAuthLimiter
from .recurring import RecurringApi
from .views import (
    Cancelled,
    ContactView,
    ErasureView,
    Health,
    NotificationPage,
    PartitionStats,
    PausesView,
    Scheduled,
    StatsView,
    full_view,
    status_view,
    viewer,
)

MAX_ID = openapi.MAX_ID


class Api:
    """The handlers; ``attach`` gives them a scheduler when the app starts, ``detach`` takes it away."""

    def __init__(
        self,
        prefix: str,
        metrics: Metrics,
        limits: ApiSettings | None = None,
        *,
        channels: tuple[str, ...] = ("websocket",),
    ) -> None:
        self.callers = Callers(prefix, limits or ApiSettings())
        self.tokens = self.callers.tokens
        self.channels = channels
        self.metrics = metrics
        self._scheduler: AsyncScheduler | None = None
        self.liveness: Liveness | None = None  # set by the app: a dead worker or reader makes /readyz 503

    def attach(self, scheduler: AsyncScheduler) -> None:
        """Serve requests with ``scheduler`` (and rate limit on its connection and clock)."""
        self._scheduler = scheduler
        self.callers.attach(scheduler.redis, scheduler.core.clock)

    def detach(self) -> None:
        """Stop using the scheduler (the app is shutting down)."""
        self._scheduler = None
        self.callers.detach()

    @property
    def failures(self) -> FailedAuthLimiter | None:
        """Failed authentications per client address, shared with the WebSocket gateway."""
        return self.callers.failures

    @property
    def zs(self) -> AsyncScheduler:
        """The scheduler; 503 while the app is not started."""
        if self._scheduler is None:
            raise ApiError(503, "the service is starting or stopping; retry shortly", headers={"Retry-After": "1"})
        return self._scheduler

    def routes(self) -> list[BaseRoute]:
        """Every route of the API."""
        n = "/api/notifications"
        return [
            Route(f"{n}/schedule/", self.schedule, methods=["POST"]),
            Route(f"{n}/", self.list_mine, methods=["GET"]),
            Route(f"{n}/{{id:int}}/", self.one, methods=["GET", "PATCH"]),
            Route(f"{n}/{{id:int}}/schedule_status/", self.status, methods=["GET"]),
            Route(f"{n}/{{id:int}}/cancel_scheduled/", self.cancel, methods=["DELETE"]),
            Route(f"{n}/{{id:int}}/scheduled/", self.cancel, methods=["DELETE"]),
            Route(f"{n}/{{id:int}}/content/", self.content, methods=["PATCH"]),
            Route("/api/batches/{batch_id}/", self.batch, methods=["GET", "PATCH", "DELETE"]),
            Route("/api/batches/{batch_id}/content/", self.batch_content, methods=["PATCH"]),
            *RecurringApi(self).routes(),
            Route("/api/stats", self.stats, methods=["GET"]),
            Route("/api/pauses", self.pauses, methods=["GET"]),
            Route("/api/pause", self.pause, methods=["POST"]),
            Route("/api/resume", self.pause, methods=["POST"]),
            Route("/api/contacts/", self.contact, methods=["GET", "PATCH"]),
            Route("/api/erasures/", self.erase, methods=["POST"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.metrics_text, methods=["GET"]),
            Route("/openapi.json", self.openapi_json, methods=["GET"]),
            Route("/docs", self.docs, methods=["GET"]),
            Route("/ws", self.upgrade_required, methods=["GET"]),  # plain HTTP only; WebSockets go to the gateway
        ]

    # -- who is calling --------------------------------------------------------------------------

    async def authenticate(self, request: Request) -> Principal:
        """The caller's principal (see ``callers``): token, failed-login count, rate limit."""
        return await self.callers.authenticate(request, self.zs.redis)

    async def visible(self, principal: Principal, notification_id: int) -> Notification:
        """The notification if the caller created or receives it (or is admin); 404 otherwise."""
        if notification_id > MAX_ID:
            raise NotFoundError(notification_id)
        n: Notification = await self.zs.status(notification_id)
        if not (principal.admin or n.recipient == principal.user or n.created_by == principal.user):
            raise NotFoundError(notification_id)
        return n

    # -- the seed's endpoints --------------------------------------------------------------------

    async def schedule(self, request: Request) -> Response:
        """POST: schedule one notification per recipient; 201 with their ids."""
        principal = await self.authenticate(request)
        body: ScheduleBody = await read_json(request, schedule_decoder)
        people, key, channels = self.schedule_checks(request, principal, body.recipients, body.channels)
        if body.scheduled_at is None and body.deliver_at_local is None:
            raise ApiError(
                422,
                "scheduled_at is required (got null or nothing), unless deliver_at_local and local_date are given",
                "scheduled_at",
            )
        try:
            result = await self.zs.schedule(
                people,
                body.title,
                body.message,
                at=body.scheduled_at,
                deliver_at_local=body.deliver_at_local,
                local_date=body.local_date,
                type=body.type,
                priority=body.priority,
                data=body.data,
                idempotency_key=key,
                created_by=principal.user,
                channels=channels,
                expires_at=body.expires_at,
                on_late=body.on_late,
                late_after=body.late_after_s,
                collapse_key=body.collapse_key,
                spread=body.spread_s,
                digest_key=body.digest_key,
                digest_window=body.digest_window_s,
                digest_max=None if body.digest_max is None else int(body.digest_max),
            )
        except PendingLimitError as exc:
            raise ApiError(429, str(exc), "recipients", code="too_many_pending") from None
        except FieldError as exc:
            if exc.field != "digest_window":
                raise
            raise ApiError(422, str(exc).replace("digest_window", "digest_window_s"), "digest_window_s") from None
        headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
        return JSON(Scheduled.of(result), status_code=201, headers=headers)

    def schedule_checks(
        self,
        request: Request,
        principal: Principal,
        recipients: Sequence[str | int | float],
        channels: Sequence[str] | None,
    ) -> tuple[list[str], str | None, list[str]]:
        """What every schedule call checks (with or without a template): the recipients the caller may schedule
        for (403), the Idempotency-Key header (scoped to the caller) and the channels this server has (422)."""
        people = validation.recipients(integral(v) for v in recipients)
        others = [p for p in people if p != principal.user]
        if others and not principal.can_schedule_for_others():
            raise ApiError(
                403,
                f"you may schedule only for yourself ({principal.user!r}); got {others[0]!r}. "
                "Scheduling for others needs a token with the schedule:any scope",
                "recipients",
            )
        key = request.headers.get("idempotency-key")
        if key is not None and not (1 <= len(key) <= MAX_IDEMPOTENCY_HEADER and key.isascii() and key.isprintable()):
            raise ApiError(
                422,
                f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_HEADER} printable ASCII characters; "
                f"got {len(key)} character(s) {key[:MAX_IDEMPOTENCY_HEADER]!r}",
                "Idempotency-Key",
            )
        named = list(dict.fromkeys(channels or ()))
        unknown = [c for c in named if c not in self.channels]
        if unknown:
            raise ApiError(
                422,
                f"channels must be among {', '.join(self.channels)} (what this server delivers "
                f"through); got {unknown[0][:64]!r}",
                "channels",
            )
        return people, None if key is None else _scoped_key(principal.user, key), named

    async def status(self, request: Request) -> Response:
        """GET: where one notification is."""
        principal = await self.authenticate(request)
        return JSON(status_view(await self.visible(principal, request.path_params["id"])))

    async def cancel(self, request: Request) -> Response:
        """DELETE: cancel while pending; 409 with the current status otherwise."""
        principal = await self.authenticate(request)
        n = await self.visible(principal, request.path_params["id"])
        n = await self.zs.cancel(n.id)
        return JSON(Cancelled(n.id, "cancelled", n.cancelled_at))

    # -- what users of such an API also expect ---------------------------------------------------

    async def one(self, request: Request) -> Response:
        """GET: one notification in full; PATCH ``{"scheduled_at"}``: reschedule it while pending."""
        principal = await self.authenticate(request)
        n = await self.visible(principal, request.path_params["id"])
        if request.method == "PATCH":
            body: RescheduleBody = await read_json(request, reschedule_decoder)
            n = await self.zs.reschedule(n.id, at=body.scheduled_at)
        return JSON(full_view(n, viewer(principal, n)))

    async def batch(self, request: Request) -> Response:
        """A whole schedule call, by the ``batch_id`` its schedule answered: GET how many are in each status,
        PATCH ``{"scheduled_at"}`` reschedule, DELETE cancel every one still pending. A caller counts and changes
        only those it created or receives (an admin all); 404 when that is none."""
        principal = await self.authenticate(request)
        batch_id = self._batch_id(request)
        only_for = None if principal.admin else principal.user
        result: BatchChange | BatchSummary
        if request.method == "GET":
            result = await self.zs.run(self.zs.core.batch_status(batch_id, only_for=only_for))
            found = result.count
        elif request.method == "PATCH":
            body: RescheduleBody = await read_json(request, reschedule_decoder)
            result = await self.zs.run(self.zs.core.reschedule_batch(batch_id, at=body.scheduled_at, only_for=only_for))
            found = result.changed + result.not_pending
        else:
            result = await self.zs.run(self.zs.core.cancel_batch(batch_id, only_for=only_for))
            found = result.changed + result.not_pending
        if not found:
            raise ApiError(
                404, f"no notification of batch {batch_id} that you created or receive (or all were purged)", "batch_id"
            )
        return JSON(result)

    async def content(self, request: Request) -> Response:
        """PATCH ``{"title", "message", "data"}`` (any of them): new content for a pending notification."""
        principal = await self.authenticate(request)
        n = await self.visible(principal, request.path_params["id"])
        body: EditBody = await read_json(request, edit_decoder)
        n = await self.zs.edit(n.id, **body.changes())
        return JSON(full_view(n, viewer(principal, n)))

    async def batch_content(self, request: Request) -> Response:
        """PATCH ``{"title", "message", "data"}`` (any of them): new content for every pending notification of a
        schedule call; a caller who did not create it changes only the one it receives; 404 when none."""
        principal = await self.authenticate(request)
        batch_id = self._batch_id(request)
        body: EditBody = await read_json(request, edit_decoder)
        only_for = None if principal.admin else principal.user
        op = self.zs.core.edit_batch(batch_id, only_for=only_for, **body.changes())
        change: BatchChange = await self.zs.run(op)
        if not change.changed + change.not_pending:
            raise ApiError(404, f"no notification of batch {batch_id} that you created or receive", "batch_id")
        return JSON(change)

    def _batch_id(self, request: Request) -> str:
        """The path's batch id; 404 when it cannot be one (as a malformed notification id matches no route)."""
        batch_id: str = request.path_params["batch_id"]
        try:
            validation.batch_id(batch_id, len(self.zs.core.keys.partitions))
        except FieldError:
            raise ApiError(
                404, f"no batch {batch_id[:64]!r}: a batch id is what a schedule call answered, e.g. 12x3", "batch_id"
            ) from None
        return batch_id

    async def list_mine(self, request: Request) -> Response:
        """GET: notifications newest first, filtered by ``recipient``, ``created_by`` and ``status``.

        A caller lists what it receives (the default) or what it created; an admin lists anything, and with
        no filter, everything.
        """
        principal = await self.authenticate(request)
        query = request.query_params
        recipient, creator = query.get("recipient"), query.get("created_by")
        if not principal.admin:
            if recipient is None and creator is None:
                recipient = principal.user
            if principal.user not in (recipient, creator):
                raise ApiError(
                    403,
                    f"you may list only what you receive (recipient={principal.user}) or what you created "
                    f"(created_by={principal.user}); other filters need an admin token",
                    "recipient" if recipient is not None else "created_by",
                )
        limit = parse_int(query.get("limit"), "limit", 1, MAX_LIMIT)
        page = await self.zs.list(
            recipient=recipient,
            created_by=creator,
            status=query.get("status"),
            limit=DEFAULT_LIMIT if limit is None else limit,
            cursor=parse_int(query.get("cursor"), "cursor", 0, MAX_ID),
        )
        items = [full_view(n, viewer(principal, n)) for n in page.items]
        return JSON(NotificationPage(items, page.next_cursor))

    async def stats(self, request: Request) -> Response:
        """GET (admin): counts per status, totals, next due and oldest overdue lag, overall and per partition."""
        principal = await self.authenticate(request)
        if not principal.admin:
            raise ApiError(403, "stats need an admin token (`zsched token create --user ID --admin`)")
        zs = self.zs
        overall = await zs.stats()
        parts = [await zs.run(zs.core.stats([p])) for p in zs.core.keys.partitions]
        per = [PartitionStats(**msgspec.structs.asdict(s), partition=i) for i, s in enumerate(parts)]
        max_dead = zs.core.retention.max_dead
        return JSON(StatsView(**msgspec.structs.asdict(overall), partitions=per, max_dead=max_dead))

    # -- pause and resume -------------------------------------------------------------------------

    async def _admin(self, request: Request, what: str) -> None:
        principal = await self.authenticate(request)
        if not principal.admin:
            raise ApiError(403, f"{what} needs an admin token (`zsched token create --user ID --admin`)")

    async def pauses(self, request: Request) -> Response:
        """GET (admin): what delivery is paused for."""
        await self._admin(request, "reading pauses")
        return JSON(PausesView(**msgspec.structs.asdict(await self.zs.pauses())))

    async def pause(self, request: Request) -> Response:
        """POST (admin) ``{"type"?}`` to /api/pause or /api/resume: pause or resume one type, or everything."""
        resume = request.url.path.endswith("/resume")
        await self._admin(request, "resuming delivery" if resume else "pausing delivery")
        body: PauseBody = await read_json(request, pause_decoder)
        now = await (self.zs.resume(body.type) if resume else self.zs.pause(body.type))
        return JSON(PausesView(**msgspec.structs.asdict(now)))

    # -- contact data ------------------------------------------------------------------------------

    def contact_owner(self, principal: Principal, recipient: str, field: str) -> str:
        """``recipient`` if the caller may manage its contact data (itself, an admin, or contacts:write); 403."""
        if not principal.may_manage_contact(recipient):
            raise ApiError(
                403,
                f"you may read and change only your own contact data ({principal.user!r}); got {recipient[:128]!r}. "
                "Others' need an admin token or a token with the contacts:write scope",
                field,
            )
        return recipient

    async def contact(self, request: Request) -> Response:
        """GET: a recipient's contact data (``?recipient=``, default yourself); PATCH: set the fields the body
        names (null removes one; ``opt_out``/``opt_in`` add and remove opt-out entries), keep the rest. A
        preferences:write token reads and sets only zone, quiet_hours and opt-outs, and sees only them."""
        principal = await self.authenticate(request)
        who = request.query_params.get("recipient", principal.user)
        only_preferences = not principal.may_manage_contact(who) and principal.may_set_preferences(who)
        if not only_preferences:
            self.contact_owner(principal, who, "recipient")
        if request.method == "PATCH":
            body: ContactBody = await read_json(request, contact_decoder)
            changes = {name: getattr(body, name) for name in CHANGES if getattr(body, name) is not UNSET}
            others = [name for name in changes if name not in PREFERENCE_FIELDS]
            if only_preferences and others:
                raise ApiError(
                    403,
                    f"a preferences:write token sets only {', '.join(PREFERENCE_FIELDS)}; got {others[0]}. "
                    "Others' contact data needs an admin token or the contacts:write scope",
                    others[0],
                )
            found = await self.zs.run(self.zs.core.change_contact(who, changes))
        else:
            found = await self.zs.contact(who)
        view = ContactView(**msgspec.structs.asdict(found))
        if only_preferences:  # how they are reached is not this token's business
            view = msgspec.structs.replace(view, email=None, phone=None, locale=None)
        return JSON(view)

    async def erase(self, request: Request) -> Response:
        """POST ``{"recipient"}``: erase the recipient's contact data and inbox (a data-protection request)."""
        principal = await self.authenticate(request)
        body: ErasureBody = await read_json(request, erasure_decoder)
        who = validation.recipient(body.recipient)
        erased = await self.zs.erase_recipient(self.contact_owner(principal, who, "recipient"))
        return JSON(ErasureView(**msgspec.structs.asdict(erased)))

    async def healthz(self, request: Request) -> Response:
        """GET: the process is alive (no Redis involved)."""
        return JSON(Health("ok"))

    async def readyz(self, request: Request) -> Response:
        """GET: Redis answers and no background task died; 503 otherwise."""
        if self.liveness is not None and self.liveness.fatal is not None:
            raise ApiError(503, f"not ready: {self.liveness.fatal}; the process is stopping")
        try:
            await self.zs.redis.ping()
        except ApiError:
            raise
        except Exception as exc:  # any failure to ping means not ready; the detail says which
            raise ApiError(503, f"Redis does not answer: {str(exc)[:200]}", headers={"Retry-After": "1"}) from None
        return JSON(Health("ready"))

    async def metrics_text(self, request: Request) -> Response:
        """GET: Prometheus text; Redis-derived series are left out (``zsched_redis_up 0``) while it is down."""
        try:
            stats = await self.zs.stats()
        except UnavailableError:
            stats = None
        return Response(self.metrics.render(stats), media_type=CONTENT_TYPE)

    async def openapi_json(self, request: Request) -> Response:
        """GET: the OpenAPI 3.1 document."""
        root = request.scope.get("root_path", "")  # mounted under a path: the API's paths start there
        doc = openapi.document(self.channels)
        return JSON({**doc, "servers": [{"url": root or "/"}]} if root else doc)

    async def upgrade_required(self, request: Request) -> Response:
        """GET /ws without a WebSocket handshake: 426, saying how to connect."""
        raise ApiError(
            426,
            "/ws is a WebSocket endpoint; connect with a WebSocket client "
            "(ws://host/ws?token=...) instead of plain HTTP",
            headers={"Upgrade": "websocket"},
        )

    async def docs(self, request: Request) -> Response:
        """GET: the same document as a readable HTML page."""
        return HTMLResponse(docs_page.html(self.channels))


def _scoped_key(user: str, key: str) -> str:
    """One user's Idempotency-Key, unambiguous across users: the length prefix keeps user ``a`` with key
    ``b:c`` apart from user ``a:b`` with key ``c``."""
    return f"{len(user)}:{user}:{key}"
