"""The HTTP API's request bodies and response shapes, decoded and built in one place."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from ..models import Notification
from .errors import ApiError


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


def status_view(n: Notification) -> dict[str, Any]:
    """The seed's schedule_status shape, plus ``recipient``, ``attempts`` and ``delivered_at`` (client ack)."""
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


def full_view(n: Notification) -> dict[str, Any]:
    """Every field of a notification, plus ``is_sent``."""
    return {**msgspec.structs.asdict(n), "is_sent": n.is_sent}


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
