"""The OpenAPI 3.1 document of the HTTP API, written by hand (``docs_page`` renders it as HTML)."""

from __future__ import annotations

from functools import cache
from typing import Any

from .. import __version__
from ..engine.validation import MAX_MESSAGE, MAX_RECIPIENT_LEN, MAX_RECIPIENTS, MAX_TITLE, MAX_TYPE
from ..models import PRIORITIES, STATUSES

_ERRORS = {
    400: "The body is not valid JSON.",
    401: "No token, a malformed Authorization header, or an unknown, expired or revoked token (see WWW-Authenticate).",
    403: "The token may not do this (scheduling for others needs schedule:any; listing others' notifications "
    "and stats need admin).",
    404: "No such notification, or not one you created or receive.",
    405: "The endpoint does not take this method (see Allow).",
    409: "The notification is no longer pending (the body carries scheduled_status), "
    "or the Idempotency-Key was used for a different request.",
    413: "The body is over 1 MiB.",
    415: "The body is not sent as application/json.",
    426: "A plain HTTP request to the WebSocket endpoint; connect with a WebSocket client.",
    422: "A rule is broken: a past or naive time, empty or too many recipients, a bad priority, an oversize field, "
    "a call that would store more than ZSCHED_MAX_CALL_BYTES, "
    "a value of the wrong type. 'field' names where.",
    429: "This token's rate limit is reached, or too many failed authentications came from this address (see "
    "Retry-After); on schedule, also: the creator holds the most pending notifications allowed "
    "(error too_many_pending, ZSCHED_MAX_PENDING_PER_CREATOR).",
    503: "Redis is unavailable; nothing was written. Retry after Retry-After seconds.",
}
_REF = "#/components/schemas/"
MAX_ID = 2**63 - 1

_RECIPIENT_ID = {
    "type": "string",
    "format": "recipient-id",
    "minLength": 1,
    "maxLength": MAX_RECIPIENT_LEN,
    "pattern": r"^[^\s\x00-\x1f\x7f-\x9f]+$",
    "description": "printable characters, no spaces or control characters",
}
_NO_NUL = {"pattern": r"^[^\x00]*$"}  # text may hold anything but NUL (as in Django REST Framework)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(
    summary: str,
    ok: dict[str, Any],
    errors: tuple[int, ...],
    *,
    body: str | None = None,
    params: tuple[dict[str, Any], ...] = (),
    auth: bool = True,
    status: int = 200,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {str(status): ok}}
    for code in sorted({*errors, *((401, 429, 503) if auth else ())}):
        op["responses"][str(code)] = _json(_ref("Error"), _ERRORS[code])
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if params:
        op["parameters"] = list(params)
    if not auth:
        op["security"] = []
    return op


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}


def _query(name: str, schema: dict[str, Any], text: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": text}


@cache
def document(channels: tuple[str, ...] = ("websocket",)) -> dict[str, Any]:
    """The OpenAPI document of every endpoint and error."""
    time = {"type": "string", "format": "date-time"}
    maybe_time = {"type": ["string", "null"], "format": "date-time"}
    status = {"type": "string", "enum": list(STATUSES)}
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error", "detail", "field"],
            "properties": {
                "error": {"type": "string", "description": "a short code, e.g. invalid, not_found, not_pending"},
                "detail": {"type": "string", "description": "what was expected, what came, and how to fix it"},
                "field": {"type": ["string", "null"], "description": "where: a body field path, header or parameter"},
                "scheduled_status": {**status, "description": "409 not_pending only: the status now"},
            },
        },
        "ScheduleRequest": {
            "type": "object",
            "required": ["recipients", "title", "message", "scheduled_at"],
            "properties": {
                "recipients": {"type": "array", "minItems": 1, "maxItems": MAX_RECIPIENTS, "items": _ref("Recipient")},
                "title": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE, **_NO_NUL},
                "message": {"type": "string", "maxLength": MAX_MESSAGE, **_NO_NUL},
                "scheduled_at": {**time, "description": "ISO 8601 with an offset (Z or +hh:mm), in the future"},
                "type": {"type": "string", "default": "system", "minLength": 1, "maxLength": MAX_TYPE, **_NO_NUL},
                "priority": {"type": "string", "enum": list(PRIORITIES), "default": "normal"},
                "data": {
                    **_ref("DataObject"),
                    "description": "any JSON object up to 16 KiB, with no NUL in its keys or strings",
                },
                "channels": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": {"enum": list(channels)},
                    "description": "how it leaves when due; default: the server's default channels",
                },
            },
        },
        "DataObject": {"type": "object", "propertyNames": _NO_NUL, "additionalProperties": _ref("DataValue")},
        "DataValue": {
            "anyOf": [
                {"type": ["null", "boolean", "number"]},
                {"type": "string", **_NO_NUL},
                {"type": "array", "items": _ref("DataValue")},
                _ref("DataObject"),
            ]
        },
        "Recipient": {
            "description": "a user id: a string or an integer, 1 to 128 printable characters, no spaces",
            "oneOf": [_RECIPIENT_ID, {"type": "integer", "minimum": -(2**63), "maximum": 2**64 - 1}],
        },
        "ScheduleResponse": {
            "type": "object",
            "properties": {
                "notification_ids": {"type": "array", "items": {"type": "integer"}},
                "count": {"type": "integer"},
                "scheduled_at": time,
            },
        },
        "RescheduleRequest": {"type": "object", "required": ["scheduled_at"], "properties": {"scheduled_at": time}},
        "ScheduleStatus": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "title": {"type": "string"},
                "scheduled_at": time,
                "scheduled_status": status,
                "is_sent": {"type": "boolean"},
                "sent_at": maybe_time,
                "created_at": time,
                "recipient": {"type": "string"},
                "attempts": {"type": "integer"},
                "delivered_at": {**maybe_time, "description": "when a WebSocket client acknowledged it"},
            },
        },
        "Notification": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "recipient": {"type": "string"},
                "title": {"type": "string"},
                "message": {"type": "string"},
                "type": {"type": "string"},
                "priority": {"type": "string"},
                "data": {"type": "object"},
                "scheduled_at": time,
                "scheduled_status": status,
                "is_sent": {"type": "boolean"},
                "attempts": {"type": "integer"},
                "created_at": time,
                "sent_at": maybe_time,
                "cancelled_at": maybe_time,
                "failed_at": maybe_time,
                "delivered_at": maybe_time,
                "last_error": {
                    "type": ["string", "null"],
                    "description": "why the last attempt failed: a generic reason for the recipient; for the creator "
                    "and admins the error, with no URL path, query or credentials",
                },
                "last_error_detail": {
                    "type": ["string", "null"],
                    "description": "admins only: what the receiver answered (e.g. the start of a webhook's body)",
                },
                "created_by": {"type": ["string", "null"]},
                "deliveries": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "each channel's outcome: 'sent', 'pending', 'cancelled', or 'failed' (for the "
                    "creator and admins 'failed: <why>', as last_error)",
                },
            },
        },
        "Cancelled": {
            "type": "object",
            "properties": {"id": {"type": "integer"}, "scheduled_status": {"const": "cancelled"}, "cancelled_at": time},
        },
        "Page": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": _ref("Notification")},
                "next_cursor": {
                    "type": ["integer", "null"],
                    "description": "pass as ?cursor= for the next page; null only when nothing more matches "
                    "(a page may be short, even empty, before that when its scan budget ran out)",
                },
            },
        },
        "Stats": {
            "type": "object",
            "properties": {
                "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                "totals": {"type": "object", "additionalProperties": {"type": "integer"}},
                "next_due_at": maybe_time,
                "oldest_overdue_ms": {"type": "integer"},
                "server_time": time,
                "partitions": {"type": "array", "items": {"type": "object"}},
            },
        },
        "Health": {"type": "object", "properties": {"status": {"type": "string"}}},
    }
    n = "/api/notifications"
    cancel = _op("Cancel a pending notification", _json(_ref("Cancelled"), "Cancelled."), (404, 409), params=(_ID,))
    paths = {
        f"{n}/schedule/": {
            "post": _op(
                "Schedule one notification per recipient (an Idempotency-Key header makes retries safe)",
                _json(_ref("ScheduleResponse"), "Created."),
                (400, 403, 409, 413, 415, 422),
                body="ScheduleRequest",
                params=(
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[ -~]+$"},
                        "description": "1 to 64 printable ASCII characters; a retry with the same key and body "
                        "returns the first answer",
                    },
                ),
                status=201,
            )
        },
        f"{n}/": {
            "get": _op(
                "Notifications newest first: what you receive (the default) or created; an admin anything, "
                "and with no filter everything",
                _json(_ref("Page"), "One page."),
                (403, 422),
                params=(
                    _query("status", status, "only this status"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}, "page size"),
                    _query(
                        "cursor",
                        {"type": "integer", "minimum": 0, "maximum": MAX_ID},
                        "next_cursor of the previous page",
                    ),
                    _query(
                        "recipient",
                        _RECIPIENT_ID,
                        "only notifications this user receives (yourself unless admin; the default without created_by)",
                    ),
                    _query(
                        "created_by",
                        _RECIPIENT_ID,
                        "only notifications this user created (yourself unless admin), across partitions",
                    ),
                ),
            )
        },
        f"{n}/{{id}}/": {
            "get": _op(
                "One notification in full", _json(_ref("Notification"), "The notification."), (404,), params=(_ID,)
            ),
            "patch": _op(
                "Reschedule a pending notification",
                _json(_ref("Notification"), "Rescheduled."),
                (400, 404, 409, 413, 415, 422),
                body="RescheduleRequest",
                params=(_ID,),
            ),
        },
        f"{n}/{{id}}/schedule_status/": {
            "get": _op("Where a notification is", _json(_ref("ScheduleStatus"), "Its status."), (404,), params=(_ID,))
        },
        f"{n}/{{id}}/cancel_scheduled/": {"delete": cancel},
        f"{n}/{{id}}/scheduled/": {"delete": {**cancel, "summary": "Cancel (the seed checklist's spelling)"}},
        "/api/stats": {
            "get": _op(
                "Counts, totals, next due and lag, overall and per partition (admin)",
                _json(_ref("Stats"), "Stats."),
                (403,),
            )
        },
        "/healthz": {"get": _op("The process is alive", _json(_ref("Health"), "Alive."), (), auth=False)},
        "/readyz": {"get": _op("Redis answers", _json(_ref("Health"), "Ready."), (503,), auth=False)},
        "/metrics": {
            "get": _op(
                "Prometheus text exposition",
                {
                    "description": "Totals, pending gauge, lateness histogram.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                (),
                auth=False,
            )
        },
        "/ws": {
            "get": {
                "summary": "WebSocket: live notifications for the token's user. Resume with ?since=<last stream_id>; "
                'ack with {"type": "ack", "id": N}. Bad token: close 1008; slow reader: close 1013',
                "parameters": [
                    _query("token", {"type": "string"}, "the token, for browsers that cannot set Authorization"),
                    _query("since", {"type": "string"}, "the last stream_id received: what was missed comes first"),
                ],
                "security": [],  # the token is checked after the handshake (header or ?token=); bad: close 1008
                "responses": {
                    "101": {"description": "Switching Protocols: the socket is open."},
                    "426": _json(_ref("Error"), _ERRORS[426]),
                },
            }
        },
        "/openapi.json": {"get": _op("This document", {"description": "OpenAPI 3.1."}, (), auth=False)},
        "/docs": {"get": _op("This document as HTML", {"description": "HTML."}, (), auth=False)},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "zsched",
            "version": __version__,
            "description": "Schedule notifications for a future time; see /docs. Every error is JSON "
            "{error, detail, field}; 405 is answered for a wrong method on any path.",
        },
        "servers": [{"url": "/"}],
        "security": [{"token": []}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "'Token <token>' or 'Bearer <token>', from `zsched token create --user ID`",
                }
            },
        },
        "paths": paths,
    }
