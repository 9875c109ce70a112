"""The HTTP API of recurring schedules, under ``/api/recurring``: create, list, read, pause, resume, delete, preview.

Authorized as notifications are: a caller sees and changes only the schedules it created (an admin, all of them);
anything else is 404, so existence does not leak. Scheduling for others needs the ``schedule:any`` scope.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from msgspec import UnsetType
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..engine import validation
from ..errors import PendingLimitError, RecurringNotFoundError, ValidationError
from ..models import RecurringSchedule
from .auth import Principal
from .bodies import DEFAULT_LIMIT, MAX_LIMIT, RecurringBody, integral, parse_int, recurring_decoder
from .errors import JSON, ApiError, read_json
from .views import Previews

if TYPE_CHECKING:
    from .api import Api

PREFIX = "/api/recurring"


class RecurringApi:
    """The handlers, over the notification API's callers and scheduler."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def routes(self) -> list[BaseRoute]:
        """Every route of recurring schedules."""
        return [
            Route(PREFIX, self.collection, methods=["GET", "POST"]),
            Route(f"{PREFIX}/{{id:int}}", self.one, methods=["GET", "DELETE"]),
            Route(f"{PREFIX}/{{id:int}}/pause", self.pause, methods=["POST"]),
            Route(f"{PREFIX}/{{id:int}}/resume", self.resume, methods=["POST"]),
            Route(f"{PREFIX}/{{id:int}}/preview", self.preview, methods=["GET"]),
        ]

    async def visible(self, principal: Principal, schedule_id: int) -> RecurringSchedule:
        """The schedule if the caller created it (or is admin); 404 otherwise."""
        if schedule_id > validation.MAX_ID:
            raise RecurringNotFoundError(schedule_id)
        s = await self.api.zs.recurring(schedule_id)
        if not (principal.admin or s.created_by == principal.user):
            raise RecurringNotFoundError(schedule_id)
        return s

    async def collection(self, request: Request) -> Response:
        """POST: create a schedule (201); GET: the caller's schedules by id (an admin's: anyone's, or all)."""
        principal = await self.api.authenticate(request)
        if request.method == "POST":
            return await self._create(request, principal)
        query = request.query_params
        creator = query.get("created_by")
        if not principal.admin:
            if creator is not None and creator != principal.user:
                raise ApiError(
                    403,
                    f"you may list only the schedules you created (created_by={principal.user}); "
                    "others' need an admin token",
                    "created_by",
                )
            creator = principal.user
        limit = parse_int(query.get("limit"), "limit", 1, MAX_LIMIT)
        page = await self.api.zs.list_recurring(
            created_by=creator,
            limit=DEFAULT_LIMIT if limit is None else limit,
            cursor=parse_int(query.get("cursor"), "cursor", 0, validation.MAX_ID),
        )
        return JSON(page)

    async def _create(self, request: Request, principal: Principal) -> Response:
        body: RecurringBody = await read_json(request, recurring_decoder)
        people, key, channels = self.api.schedule_checks(request, principal, body.recipients, body.channels)
        try:
            s = await self.api.zs.create_recurring(
                people,
                body.title,
                body.message,
                cron=None if isinstance(body.cron, UnsetType) else body.cron,
                every=None if isinstance(body.every_s, UnsetType) else body.every_s,
                timezone=body.timezone,
                start=body.start_at,
                end=body.end_at,
                max_count=None if body.max_count is None else integral(body.max_count),  # type: ignore[arg-type]
                catch_up=body.catch_up,
                type=body.type,
                priority=body.priority,
                data=body.data,
                created_by=principal.user,
                channels=channels,
                idempotency_key=key,
            )
        except PendingLimitError as exc:
            raise ApiError(429, str(exc), "recipients", code="too_many_pending") from None
        except ValidationError as exc:
            if exc.field == "every":  # the library's argument is the body's every_s
                exc.field = "every_s"
            raise
        return JSON(s, status_code=201)

    async def one(self, request: Request) -> Response:
        """GET: one schedule; DELETE: remove it and cancel its pending occurrence."""
        principal = await self.api.authenticate(request)
        s = await self.visible(principal, request.path_params["id"])
        if request.method == "DELETE":
            s = await self.api.zs.delete_recurring(s.id)
        return JSON(s)

    async def pause(self, request: Request) -> Response:
        """POST: stop creating occurrences and cancel the pending one."""
        principal = await self.api.authenticate(request)
        s = await self.visible(principal, request.path_params["id"])
        return JSON(await self.api.zs.pause_recurring(s.id))

    async def resume(self, request: Request) -> Response:
        """POST: start a paused schedule again from its next time after now."""
        principal = await self.api.authenticate(request)
        s = await self.visible(principal, request.path_params["id"])
        return JSON(await self.api.zs.resume_recurring(s.id))

    async def preview(self, request: Request) -> Response:
        """GET: the next ``count`` times the schedule fires."""
        principal = await self.api.authenticate(request)
        s = await self.visible(principal, request.path_params["id"])
        count = parse_int(request.query_params.get("count"), "count", 1, 1000)
        return JSON(Previews(await self.api.zs.preview_recurring(s.id, 10 if count is None else count)))
