"""Loads the Lua scripts under ``lua/`` once per process and binds them to a Redis client.

Helpers that several scripts share live once under ``lua/lib/``: a line ``-- include: NAME.lua`` in a script
is replaced by that file's text when the script is read, so what reaches Redis is still one self-contained
script (EVALSHA has no imports).

Each script is called by SHA (EVALSHA); redis-py's Script reloads it on a NOSCRIPT reply, so a server
restart or SCRIPT FLUSH is invisible to callers.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from redis.exceptions import NoScriptError

NAMES = (
    "schedule",
    "stage_schedule",
    "commit_schedule",
    "claim",
    "ack",
    "retry",
    "skip",
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
    "join_digest",
    "seal",
    "move_out",
    "move_in",
    "forward",
)


def lua_dir() -> Path:
    """Where the scripts are: inside the installed package, or ``lua/`` beside it in a checkout."""
    packaged = Path(__file__).parent.parent / "lua"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "lua"


INCLUDE = re.compile(r"^-- include: ([a-z_]+\.lua)\n", re.M)
"""A script line naming a helper under ``lua/lib/`` to put in its place."""


@cache
def sources() -> dict[str, str]:
    """Every script's source as Redis runs it (its includes filled in), read from disk once."""
    folder = lua_dir()
    return {name: expand((folder / f"{name}.lua").read_text(), folder / "lib") for name in NAMES}


def expand(source: str, lib: Path) -> str:
    """``source`` with each ``-- include: NAME.lua`` line replaced by ``lib/NAME.lua``'s text."""
    return INCLUDE.sub(lambda m: (lib / m[1]).read_text(), source)


class Scripts:
    """The scripts registered on one client (sync or asyncio); attribute access by script name."""

    def __init__(self, client: Any) -> None:
        self._scripts = {name: client.register_script(src) for name, src in sources().items()}

    def __getitem__(self, name: str) -> Any:
        return self._scripts[name]

    def run(self, client: Any, name: str, keys: list[str], args: list[str | int]) -> Any:
        """Run script ``name`` on a sync client (not a pipeline): one EVALSHA as redis-py's ``Script`` sends it,
        without its per-call copying of keys and arguments; on NOSCRIPT the ``Script`` loads it and runs it again."""
        script = self._scripts[name]
        try:
            return client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return script(keys=keys, args=args, client=client)

    async def run_async(self, client: Any, name: str, keys: list[str], args: list[str | int]) -> Any:
        """``run`` on an asyncio client."""
        script = self._scripts[name]
        try:
            return await client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await script(keys=keys, args=args, client=client)
