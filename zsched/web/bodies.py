"""The HTTP API's request bodies and response shapes, decoded and built in one place."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

import msgspec

from ..models import Notification
from .auth import Principal
from .errors import ApiError

Viewer = Literal["recipient", "creator", "admin"]
"""Who reads a notification, which decides how much of a failure it is told."""

_LEGACY_BODY = re.compile(r"(; expected 2xx): .*", re.S)  # 0.1's webhook error: the response body followed
_URL_TAIL = re.compile(r"(\w+://)(?:[^\s/?#@'\"]*@)?([^\s/?#'\"]+)[^\s'\"]*")


class ScheduleBody(msgspec.Struct, forbid_unknown_fields=False):
    """``POST /api/notifications/schedule/``: one notification per recipient, all due at ``scheduled_at``."""

    recipients: list[str | int | float]  # JSON has one number type: 7.0 is the integer 7 (checked in schedule)
    title: str
    message: str
    scheduled_at: datetime
    type: str = "system"
    priority: str = "normal"
    data: dict[str, Any] | None = None
    channels: list[str] | None = None


class RescheduleBody(msgspec.Struct, forbid_unknown_fields=False):
    """``PATCH /api/notifications/{id}/``: the new due time."""

    scheduled_at: datetime


schedule_decoder = msgspec.json.Decoder(ScheduleBody)
reschedule_decoder = msgspec.json.Decoder(RescheduleBody)


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
    if n.scheduled_status == "failed":
        return "delivery failed for good"
    if n.scheduled_status in ("pending", "processing"):
        return "delivery failed; it will be retried"
    return "an earlier delivery attempt failed"


def deliveries(n: Notification, who: Viewer) -> dict[str, str]:
    """Each channel's outcome ("sent", "pending", "failed: <why>"), for the channels the notification names
    or an attempt recorded; why as ``failure`` lets ``who`` read it (a recipient gets "failed" alone)."""
    names = n.channels or sorted({*n.done, *n.channel_errors})
    out: dict[str, str] = {}
    for name in names:
        error = n.channel_errors.get(name) or (n.last_error if len(names) == 1 else None)
        if n.scheduled_status == "sent" or name in n.done:
            out[name] = "sent"
        elif n.scheduled_status == "cancelled":
            out[name] = "cancelled"
        elif error is None:
            out[name] = "pending"
        elif who == "recipient":
            out[name] = "failed"
        else:
            out[name] = f"failed: {failure(msgspec.structs.replace(n, last_error=error), who)}"
    return out


def status_view(n: Notification) -> dict[str, Any]:
    """The seed's schedule_status shape, plus ``recipient``, ``attempts`` and ``delivered_at`` (client ack);
    no error text, so it is the same for every viewer."""
    return {
        "id": n.id,
        "title": n.title,
        "scheduled_at": n.scheduled_at,
        "scheduled_status": n.scheduled_status,
        "is_sent": n.is_sent,
        "sent_at": n.sent_at,
        "created_at": n.created_at,
        "recipient": n.recipient,
        "attempts": n.attempts,
        "delivered_at": n.delivered_at,
    }


def full_view(n: Notification, who: Viewer = "recipient") -> dict[str, Any]:
    """Every field of a notification, plus ``is_sent`` and each channel's outcome (``deliveries``);
    ``last_error`` as ``who`` may read it, and ``last_error_detail`` (e.g. a webhook's response body) for
    admins only."""
    view = {**msgspec.structs.asdict(n), "is_sent": n.is_sent, "last_error": failure(n, who)}
    del view["done"], view["channel_errors"]
    view["deliveries"] = deliveries(n, who)
    if who != "admin":
        del view["last_error_detail"]
    return view


def integral(value: str | int | float) -> str | int | float:
    """A JSON number with no fraction as the integer it is (``7.0`` is ``7``); anything else unchanged."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def parse_int(raw: str | None, name: str, low: int, high: int) -> int | None:
    """A query parameter as a whole number in [low, high]; 422 naming it otherwise (None when absent)."""
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:  # '²'.isdigit() is True
        raise ApiError(422, f"{name} must be a whole number from {low} to {high}; got {raw[:40]!r}", name)
    return int(raw)
