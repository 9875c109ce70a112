"""How the HTTP API answers when something is wrong: one JSON shape, ``{"error", "detail", "field"}``.

Every zsched exception, every Starlette HTTP error and every Redis error maps to a status here (a Redis that
is down, or refuses a command: out of memory, a cluster moving slots or failing over, a cluster node reached
as a single server: 503); only a true bug reaches the catch-all, which logs it and answers 500 without
internals.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
import redis
from redis.exceptions import AskError, RedisClusterException
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..errors import (
    IdempotencyConflictError,
    NotFoundError,
    NotPendingError,
    RecurringNotFoundError,
    TemplateInUseError,
    TemplateNotFoundError,
    UnavailableError,
    ValidationError,
    ZschedError,
)

log = logging.getLogger("zsched.http")

MAX_BODY_BYTES = 1024 * 1024
_PATH = re.compile(r" - at `\$\.?(.*)`$")
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    426: "upgrade_required",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class Error(msgspec.Struct):
    """The body of every error response."""

    error: str
    detail: str
    field: str | None = None


class JSON(Response):
    """A JSON response encoded by msgspec (datetimes as RFC 3339)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


class ApiError(Exception):
    """An error the API answers with ``status`` and the JSON error body; nothing was written."""

    def __init__(
        self,
        status: int,
        detail: str,
        field: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.body = Error(code or _CODES.get(status, "error"), detail, field)
        self.headers = headers or {}
        self.extra = extra or {}


def error_response(error: ApiError) -> JSON:
    """The response for an ``ApiError``."""
    return JSON({**msgspec.structs.asdict(error.body), **error.extra}, status_code=error.status, headers=error.headers)


def as_api_error(exc: BaseException) -> ApiError | None:
    """The API error a known exception stands for; None for a bug."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ValidationError):
        return ApiError(422, str(exc), exc.field)
    if isinstance(exc, RecurringNotFoundError):
        return ApiError(404, f"no recurring schedule with id {exc.schedule_id} that you can see", "id")
    if isinstance(exc, NotFoundError):
        return ApiError(404, f"no notification with id {exc.notification_id} that you can see", "id")
    if isinstance(exc, NotPendingError):
        return ApiError(
            409,
            str(exc),
            "scheduled_status",
            code="not_pending",
            extra={"id": exc.notification_id, "scheduled_status": exc.status},
        )
    if isinstance(exc, IdempotencyConflictError):
        return ApiError(409, str(exc), "Idempotency-Key", code="idempotency_conflict")
    if isinstance(exc, TemplateNotFoundError):
        return ApiError(404, str(exc), "template")
    if isinstance(exc, TemplateInUseError):
        return ApiError(409, str(exc), "name", code="template_in_use", extra={"pending": exc.pending})
    if isinstance(exc, UnavailableError | redis.ConnectionError | redis.TimeoutError):
        return ApiError(
            503,
            "Redis did not answer in time, so whether a change was applied is unknown; retry shortly, and send an "
            f"Idempotency-Key with a schedule so that its retry answers with the first outcome ({_first_line(exc)})",
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, AskError):  # MOVED too: the URL names a cluster node and this process took it for a server
        return ApiError(
            503,
            f"Redis is a cluster, but this process talks to it as a single server ({_first_line(exc)}); set "
            "ZSCHED_REDIS_CLUSTER=auto or yes (or ZSCHED_REDIS_NODES) and restart it",
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, redis.RedisError | RedisClusterException):
        log.warning("Redis refused a command: %s", _first_line(exc))
        return ApiError(
            503,
            f"Redis refused the command ({_first_line(exc)}); retry shortly (a schedule retried with the same "
            "Idempotency-Key answers with its first outcome)",
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, HTTPException):
        detail = {
            404: "no such endpoint; see /docs for the API",
            405: f"method not allowed here; allowed: {(exc.headers or {}).get('Allow', '')}",
        }.get(exc.status_code, exc.detail)
        return ApiError(exc.status_code, detail, headers=dict(exc.headers or {}))
    if isinstance(exc, ZschedError):
        return ApiError(422, str(exc))
    return None


async def handle(request: Request, exc: Exception) -> Response:
    """Starlette exception handler: known errors as their status, anything else as a logged 500."""
    error = as_api_error(exc)
    if error is None:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        error = ApiError(500, "an internal error occurred; it has been logged")
    return error_response(error)


async def read_json(request: Request, decoder: msgspec.json.Decoder[Any]) -> Any:
    """The request body decoded into ``decoder``'s type: 415 if not JSON, 413 over 1 MiB, 400 if malformed,
    422 with the field path when a value has the wrong type."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise ApiError(
            415, f"send the body as JSON with Content-Type: application/json; got {media or 'none'!r}", "Content-Type"
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, f"the body must be at most {MAX_BODY_BYTES} bytes; got {declared}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, f"the body must be at most {MAX_BODY_BYTES} bytes; got more")
        chunks.append(chunk)
    body = b"".join(chunks)
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _PATH.search(text)
        field = match.group(1) if match else None
        raise ApiError(422, text[: match.start()] if match else text, field) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "the body nests arrays or objects too deeply; keep it under a few hundred levels") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
