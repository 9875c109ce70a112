"""Heartbeats: every worker and gateway says every few seconds that it is alive and what it is doing, so
``zsched workers``, ``GET /api/processes`` and the dashboard can list them and flag one gone quiet.

A heartbeat is one ``heartbeat.lua`` call: the process's description (expiring) and, in one sorted set, when its
last heartbeat arrived by the server's clock. No I/O of its own; ``zsched.delivery.heartbeat`` runs the loop.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from .base import CoreBase
from .replies import HeartbeatReply
from .steps import Command, Op, Script

Kind = Literal["worker", "gateway", "serve"]
"""``serve``: the API, the gateway and a worker in one process; ``gateway``: ``serve --no-worker``."""

BEAT_EVERY_MS = 5_000
"""How often a process beats."""
LATE_AFTER_BEATS = 3
"""A process whose last heartbeat is older than this many intervals is flagged late."""
KEEP_MS = 10 * 60_000
"""How long a silent process is still listed (as late) before its entry expires."""


class ProcessInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What one process says about itself at each heartbeat (times in epoch ms)."""

    id: str
    kind: Kind
    host: str
    pid: int
    started_ms: int
    version: str
    partitions: list[int]
    in_flight: int = 0
    sockets: int | None = None  # gateways: WebSockets open
    beat_every_ms: int = BEAT_EVERY_MS


class ProcessState(msgspec.Struct, frozen=True, kw_only=True):
    """A process as listed: what it said, when it last beat, and whether that is too long ago."""

    info: ProcessInfo
    last_beat_ms: int
    age_ms: int
    late: bool


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(ProcessInfo).decode


def beat(core: CoreBase, info: ProcessInfo, keep_ms: int = KEEP_MS) -> Op[int]:
    """Record one heartbeat of ``info``'s process; returns the server time it was recorded at (epoch ms)."""
    keys = core.keys
    step = Script(
        "heartbeat", [keys.processes, keys.process(info.id)], [core.now_arg(), info.id, _encode(info).decode(), keep_ms]
    )
    (reply,) = yield [step]
    return HeartbeatReply.read(reply).now_ms


def forget(core: CoreBase, process_id: str) -> Op[None]:
    """Take a process off the list (it stopped cleanly, so it is not late, just gone), with its sockets."""
    keys = core.keys
    yield [
        Command(("ZREM", keys.processes, process_id)),
        Command(("DEL", keys.process(process_id))),
        Command(("DEL", keys.sockets(process_id))),
    ]


def list_processes(core: CoreBase) -> Op[list[ProcessState]]:
    """Every process that beat within ``KEEP_MS``, longest running first, each flagged late when its last
    heartbeat is more than ``LATE_AFTER_BEATS`` intervals old (on the server's clock)."""
    keys = core.keys
    now_reply, members = yield [Command(("TIME",)), Command(("ZRANGE", keys.processes, 0, -1, "WITHSCORES"))]
    seconds, micros = now_reply
    now_ms = core.clock() if core.clock else int(seconds) * 1000 + int(micros) // 1000
    beats = [(_text(m), int(float(s))) for m, s in members]
    if not beats:
        return []
    (raw,) = yield [Command(("MGET", *(keys.process(pid) for pid, _ in beats)))]
    out = []
    for (_, last), info in zip(beats, raw, strict=True):
        if not info:
            continue  # expired between the two reads
        described = _decode(info)
        age = max(0, now_ms - last)
        out.append(
            ProcessState(
                info=described, last_beat_ms=last, age_ms=age, late=age > LATE_AFTER_BEATS * described.beat_every_ms
            )
        )
    return sorted(out, key=lambda s: (s.info.started_ms, s.info.id))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
