"""How the long-running commands log: text lines for people, or ``ZSCHED_LOG_FORMAT=json`` for collectors.

In JSON each record is one object on one line: ``time``, ``level``, ``logger``, ``message``, then whatever
fields the call passed with ``extra=`` (the worker adds ``notification_id``, ``recipient``, ``attempt`` and
``late_ms`` to each delivery line), then ``exception`` when there is one.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from ..errors import ConfigError

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the record's ``extra=`` fields as keys of their own."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def log_format() -> str:
    """``ZSCHED_LOG_FORMAT``: ``text`` (the default) or ``json``."""
    value = os.environ.get("ZSCHED_LOG_FORMAT", "").strip().lower() or "text"
    if value not in FORMATS:
        raise ConfigError(f"ZSCHED_LOG_FORMAT must be one of {', '.join(FORMATS)}; got {value!r}")
    return value


def configure(level: str, fmt: str) -> None:
    """Send every record at ``level`` and above to stderr, as text or JSON."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
