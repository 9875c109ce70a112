"""The HTTP endpoints of templates and of the inbox (read receipts), with their shapes; part of the HTTP API and its
OpenAPI document.

    GET    /api/templates/                      every template's latest version
    POST   /api/templates/{name}/               save its next version (admin or templates:write)
    GET    /api/templates/{name}/?version=N     one version (the latest by default)
    DELETE /api/templates/{name}/               every version (admin or templates:write); 409 while in use
    POST   /api/templates/{name}/preview/       render it with a context, for a locale
    POST   /api/templates/{name}/schedule/      schedule with it, as POST /api/notifications/schedule/ does
    GET    /api/inbox/                          your delivered notifications, newest first, and the unread count
    POST   /api/inbox/read/                     mark some read, by notification id
    POST   /api/inbox/read_all/                 mark everything read

The template body names its fallback variant apart from the others, so a body of the right shape always has one.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..engine.contacts import LOCALE_PATTERN, MAX_LOCALE
from ..engine.reads import MAX_MARK_IDS, MAX_PAGE
from ..engine.rendering import MAX_NAME, MAX_SOURCE, MAX_VARIANTS
from ..engine.validation import MAX_ID, MAX_RECIPIENTS, MAX_TYPE
from ..errors import PendingLimitError
from ..models import PRIORITIES, Template
from .auth import SCOPE_TEMPLATES_WRITE, Principal
from .bodies import NO_NUL, DataObject, Recipient, Time, UserId, loose_decoder, parse_int
from .errors import JSON, ApiError, read_json
from .views import Scheduled

if TYPE_CHECKING:
    from .api import Api

TemplateName = Annotated[
    str, Meta(min_length=1, max_length=MAX_NAME, pattern=r"^[A-Za-z0-9._-]+$", description="letters, digits, - _ .")
]
Locale = Annotated[str, Meta(max_length=MAX_LOCALE, pattern=LOCALE_PATTERN, description="a BCP 47 tag, e.g. pt-BR")]
Source = Annotated[str, Meta(max_length=MAX_SOURCE, pattern=NO_NUL, description="a Jinja2 template (sandboxed)")]
Version = (
    Annotated[int, Meta(ge=1, le=MAX_ID)]
    # JSON has one number type: 2.0 is the integer 2
    | Annotated[float, Meta(ge=1, le=MAX_ID, multiple_of=1, description="a whole number: 2.0 is 2")]
)
NotificationId = (
    Annotated[int, Meta(ge=0, le=MAX_ID)]
    | Annotated[float, Meta(ge=0, le=MAX_ID, multiple_of=1, description="a whole number: 7.0 is 7")]
)
StreamId = Annotated[str, Meta(pattern=r"^\d{1,20}-\d{1,20}$", description="an inbox entry's stream id")]


class VariantBody(msgspec.Struct, forbid_unknown_fields=True):
    """One locale's sources: the title and message as text, the HTML body (optional) with autoescape on."""

    title: Source
    message: Source
    html: Source | None = None


class FallbackBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The variant used for a recipient whose locale has none, and its locale."""

    locale: Locale
    title: Source
    message: Source
    html: Source | None = None


class TemplateBody(msgspec.Struct, forbid_unknown_fields=False):
    """``POST /api/templates/{name}/``: the next version: its fallback variant, and the other locales' (one
    naming the fallback's locale is replaced by it)."""

    fallback: FallbackBody
    variants: Annotated[dict[Locale, VariantBody], Meta(max_length=MAX_VARIANTS - 1)] = {}


class PreviewBody(msgspec.Struct, forbid_unknown_fields=False):
    """``POST /api/templates/{name}/preview/``: the context, and the locale to render for (default: fallback)."""

    context: DataObject | None = None
    locale: Locale | None = None
    version: Version | None = None


class TemplateScheduleBody(msgspec.Struct, forbid_unknown_fields=False):
    """``POST /api/templates/{name}/schedule/``: one notification per recipient, rendered from the template with
    ``context`` when sent, in each recipient's locale (its latest version unless ``version``)."""

    recipients: Annotated[list[Recipient], Meta(min_length=1, max_length=MAX_RECIPIENTS)]
    scheduled_at: Annotated[datetime, Meta(tz=True, description="ISO 8601 with an offset (Z or +hh:mm), in the future")]
    context: DataObject | None = None
    version: Version | None = None
    type: Annotated[str, Meta(min_length=1, max_length=MAX_TYPE, pattern=NO_NUL)] = "system"
    priority: Annotated[str, Meta(extra_json_schema={"enum": list(PRIORITIES)})] = "normal"
    data: DataObject | None = None
    channels: Annotated[list[str], Meta(extra_json_schema={"uniqueItems": True})] | None = None


class ReadBody(msgspec.Struct, forbid_unknown_fields=False):
    """``POST /api/inbox/read/``: the notifications to mark read."""

    ids: Annotated[list[NotificationId], Meta(min_length=1, max_length=MAX_MARK_IDS)]


class TemplatePath(msgspec.Struct):
    """A template's path parameter."""

    name: TemplateName


class TemplateQuery(msgspec.Struct):
    """``GET /api/templates/{name}/``'s query parameter."""

    version: Annotated[int, Meta(ge=1, le=MAX_ID, description="default: the latest")] | UnsetType = UNSET


class InboxQuery(msgspec.Struct):
    """The inbox endpoints' query parameters (``limit`` and ``before`` page ``GET``)."""

    recipient: Annotated[UserId, Meta(description="whose inbox (yourself unless admin)")] | UnsetType = UNSET
    limit: Annotated[int, Meta(ge=1, le=MAX_PAGE, description="page size")] = 50
    before: Annotated[StreamId, Meta(description="next_before of the previous page")] | UnsetType = UNSET


class VariantView(msgspec.Struct, omit_defaults=False):
    """One locale's sources."""

    title: str
    message: str
    html: str | None


class TemplateView(msgspec.Struct, kw_only=True):
    """One version of a template."""

    name: str
    version: int
    fallback_locale: str
    variants: dict[str, VariantView]
    created_at: Time

    @classmethod
    def of(cls, t: Template) -> TemplateView:
        """The view of ``t``."""
        variants = {k: VariantView(v.title, v.message, v.html) for k, v in t.variants.items()}
        return cls(
            name=t.name,
            version=t.version,
            fallback_locale=t.fallback_locale,
            variants=variants,
            created_at=t.created_at,
        )


class TemplateList(msgspec.Struct):
    """Every template's latest version, by name."""

    items: list[TemplateView]


class TemplateDeleted(msgspec.Struct):
    """A template deleted, and how many versions it had."""

    name: str
    versions_deleted: int


class RenderedView(msgspec.Struct, omit_defaults=False):
    """A template rendered for one locale (the variant used)."""

    locale: str
    title: str
    message: str
    html: str | None


class InboxItemView(msgspec.Struct):
    """One inbox entry: the notification as delivered (what a WebSocket client received) and whether it was read."""

    stream_id: str
    read: bool
    notification: dict[str, Any]


class InboxView(msgspec.Struct):
    """One page of an inbox, newest first, and the unread count of all of it."""

    recipient: str
    unread: int
    items: list[InboxItemView]
    next_before: str | None


class ReadView(msgspec.Struct):
    """The unread count after a mark, and when each id named was read (ids unknown, not yours, or not yet sent
    are left out)."""

    unread: int
    read_at: dict[str, Time]


SHAPES: tuple[type[msgspec.Struct], ...] = (
    TemplateBody,
    PreviewBody,
    TemplateScheduleBody,
    ReadBody,
    TemplateView,
    TemplateList,
    TemplateDeleted,
    RenderedView,
    InboxView,
    ReadView,
)
PARAMETERS: dict[type[msgspec.Struct], str] = {TemplatePath: "path", TemplateQuery: "query", InboxQuery: "query"}

_template = loose_decoder(TemplateBody)
_preview = loose_decoder(PreviewBody)
_schedule = loose_decoder(TemplateScheduleBody)
_read = loose_decoder(ReadBody)


class MessagingApi:
    """The handlers, over the API's authentication and scheduler."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def routes(self) -> list[BaseRoute]:
        """Every route these endpoints serve."""
        t = "/api/templates"
        return [
            Route(f"{t}/", self.list_templates, methods=["GET"]),
            Route(f"{t}/{{name}}/", self.template, methods=["GET", "POST", "DELETE"]),
            Route(f"{t}/{{name}}/preview/", self.preview, methods=["POST"]),
            Route(f"{t}/{{name}}/schedule/", self.schedule, methods=["POST"]),
            Route("/api/inbox/", self.inbox, methods=["GET"]),
            Route("/api/inbox/read/", self.read, methods=["POST"]),
            Route("/api/inbox/read_all/", self.read_all, methods=["POST"]),
        ]

    async def list_templates(self, request: Request) -> Response:
        """GET: every template's latest version."""
        await self.api.authenticate(request)
        return JSON(TemplateList([TemplateView.of(t) for t in await self.api.zs.templates()]))

    async def template(self, request: Request) -> Response:
        """GET one version; POST its next version (201); DELETE every version."""
        principal = await self.api.authenticate(request)
        name = request.path_params["name"]
        zs = self.api.zs
        if request.method == "GET":
            version = parse_int(request.query_params.get("version"), "version", 1, MAX_ID)
            return JSON(TemplateView.of(await zs.template(name, version)))
        _may_write(principal)
        if request.method == "DELETE":
            return JSON(TemplateDeleted(name, await zs.delete_template(name)))
        body: TemplateBody = await read_json(request, _template)
        fallback = body.fallback
        variants: dict[str, dict[str, str | None]] = {
            k: {"title": v.title, "message": v.message, "html": v.html} for k, v in body.variants.items()
        }
        if not isinstance(fallback, FallbackBody):
            raise ApiError(422, "fallback must be an object with locale, title and message", "fallback")
        variants[fallback.locale] = {"title": fallback.title, "message": fallback.message, "html": fallback.html}
        saved = await zs.put_template(name, variants, fallback_locale=fallback.locale)
        return JSON(TemplateView.of(saved), status_code=201)

    async def preview(self, request: Request) -> Response:
        """POST: the template rendered with the body's context for its locale."""
        await self.api.authenticate(request)
        body: PreviewBody = await read_json(request, _preview)
        got = await self.api.zs.preview_template(
            request.path_params["name"], body.context, version=_whole(body.version, "version"), locale=body.locale
        )
        return JSON(RenderedView(got.locale, got.title, got.message, got.html))

    async def schedule(self, request: Request) -> Response:
        """POST: schedule one notification per recipient rendered from the template; 201 with their ids."""
        principal = await self.api.authenticate(request)
        body: TemplateScheduleBody = await read_json(request, _schedule)
        people, key, channels = self.api.schedule_checks(request, principal, body.recipients, body.channels)
        try:
            result = await self.api.zs.schedule_template(
                people,
                request.path_params["name"],
                body.context,
                version=_whole(body.version, "version"),
                at=body.scheduled_at,
                type=body.type,
                priority=body.priority,
                data=body.data,
                idempotency_key=key,
                created_by=principal.user,
                channels=channels,
            )
        except PendingLimitError as exc:
            raise ApiError(429, str(exc), "recipients", code="too_many_pending") from None
        headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
        return JSON(Scheduled.of(result), status_code=201, headers=headers)

    async def inbox(self, request: Request) -> Response:
        """GET: one page of the inbox, newest first, and its unread count."""
        who = _inbox_owner(await self.api.authenticate(request), request)
        query = request.query_params
        limit = parse_int(query.get("limit"), "limit", 1, MAX_PAGE)
        page = await self.api.zs.inbox(who, limit=50 if limit is None else limit, before=query.get("before"))
        items = [InboxItemView(i.stream_id, i.read, i.notification) for i in page.items]
        return JSON(InboxView(page.recipient, page.unread, items, page.next_before))

    async def read(self, request: Request) -> Response:
        """POST ``{"ids"}``: mark those notifications read."""
        who = _inbox_owner(await self.api.authenticate(request), request)
        body: ReadBody = await read_json(request, _read)
        marks = await self.api.zs.mark_read(who, [i for i in (_whole(v, "ids") for v in body.ids) if i is not None])
        return JSON(ReadView(marks.unread, {str(k): v for k, v in marks.read_at.items()}))

    async def read_all(self, request: Request) -> Response:
        """POST: mark everything in the inbox read."""
        who = _inbox_owner(await self.api.authenticate(request), request)
        marks = await self.api.zs.mark_all_read(who)
        return JSON(ReadView(marks.unread, {}))


def _whole(value: float | None, field: str) -> int | None:
    """A JSON number as the whole number it is (2.0 is 2); 422 for a fraction."""
    if value is None or isinstance(value, int):
        return value
    if not value.is_integer():
        raise ApiError(422, f"{field} must be a whole number; got {value}", field)
    return int(value)


def _may_write(principal: Principal) -> None:
    if not (principal.admin or SCOPE_TEMPLATES_WRITE in principal.scopes):
        raise ApiError(
            403, f"saving and deleting templates needs an admin token or the {SCOPE_TEMPLATES_WRITE} scope", "name"
        )


def _inbox_owner(principal: Principal, request: Request) -> str:
    """Whose inbox: ``?recipient=`` (yourself by default); another's needs an admin token (403)."""
    who = request.query_params.get("recipient", principal.user)
    if who != principal.user and not principal.admin:
        raise ApiError(
            403,
            f"you may read and mark only your own inbox ({principal.user!r}); others' need an admin token",
            "recipient",
        )
    return who
