"""The steps an engine operation yields: script calls and plain commands, and the generator type ``Op``.

An operation is a generator: it yields a batch of steps, receives their replies (in step order), and
returns its result; ``Op[ScheduleResult]`` is one whose result is a ``ScheduleResult``.
``client.Scheduler`` and ``client.AsyncScheduler`` drive the same generators over a sync or an asyncio
connection, so the logic exists once and the engine does no I/O.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeAlias, TypeVar

import msgspec


class Script(msgspec.Struct, frozen=True):
    """A step that runs one Lua script."""

    name: str
    keys: list[str]
    args: list[str | int]


class Command(msgspec.Struct, frozen=True):
    """A step that runs one plain Redis command."""

    args: tuple[str | int, ...]


T = TypeVar("T")

Step: TypeAlias = Script | Command
Op: TypeAlias = Generator[list[Step], list[Any], T]
