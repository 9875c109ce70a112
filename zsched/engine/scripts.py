"""Loads the Lua scripts under ``lua/`` once per process and binds them to a Redis client.

Each script is called by SHA (EVALSHA); redis-py's Script reloads it on a NOSCRIPT reply, so a server
restart or SCRIPT FLUSH is invisible to callers.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

NAMES = (
    "schedule",
    "stage_schedule",
    "commit_schedule",
    "claim",
    "ack",
    "retry",
    "cancel",
    "reschedule",
    "cancel_batch",
    "reschedule_batch",
    "edit",
    "edit_batch",
    "reap",
    "renew",
    "purge",
    "publish_inbox",
    "rate_limit",
    "mark_delivered",
    "requeue_dead",
    "read",
    "set_contact",
    "erase_recipient",
    "page",
    "heartbeat",
    "add_minute",
    "advance_recurring",
    "stop_recurring",
    "set_sockets",
    "enlist",
    "own",
    "disown",
    "put_template",
    "reserve_template",
    "delete_template",
    "read_inbox",
    "mark_read",
    "pause",
    "resume",
    "seal",
    "move_out",
    "move_in",
    "forward",
)


def lua_dir() -> Path:
    """Where the scripts are: inside the installed package, or ``lua/`` beside it in a checkout."""
    packaged = Path(__file__).parent.parent / "lua"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "lua"


@cache
def sources() -> dict[str, str]:
    """Every script's source, read from disk once."""
    folder = lua_dir()
    return {name: (folder / f"{name}.lua").read_text() for name in NAMES}


class Scripts:
    """The scripts registered on one client (sync or asyncio); attribute access by script name."""

    def __init__(self, client: Any) -> None:
        self._scripts = {name: client.register_script(src) for name, src in sources().items()}

    def __getitem__(self, name: str) -> Any:
        return self._scripts[name]
