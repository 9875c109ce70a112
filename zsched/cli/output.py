"""How commands print a value: JSON with ``--json``, otherwise lines a person reads."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import msgspec

from ..models import Notification


def show(value: Any, as_json: bool) -> None:
    """Print ``value`` as JSON, or as aligned fields (a notification) or indented JSON (anything else)."""
    if as_json:
        print(msgspec.json.encode(value).decode())
    elif isinstance(value, Notification):
        for field in (
            "id",
            "recipient",
            "title",
            "scheduled_status",
            "scheduled_at",
            "attempts",
            "created_at",
            "sent_at",
            "cancelled_at",
            "failed_at",
            "expires_at",
            "expired_at",
            "collapse_key",
            "collapsed_at",
            "throttled_at",
            "skipped_at",
            "opted_out",
            "digest_key",
            "digest",
            "last_error",
        ):
            item = getattr(value, field)
            if item is not None and item != []:
                print(f"{field:>17}: {item.isoformat() if isinstance(item, datetime) else item}")
    else:
        print(json.dumps(msgspec.to_builtins(value), indent=2))
