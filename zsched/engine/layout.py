"""The keyspace's layout, recorded in Redis: a process that disagrees with it refuses to run.

Two things are recorded in the HASH ``<prefix>:{meta}:layout``, by the first process that uses the keyspace:

``partitions``
    Notification ids carry their partition (``id % partitions``), so two processes with different partition
    counts would strand or misroute each other's notifications. Every later process compares its count.
    Changing the count means moving every pending notification: ``zsched reshard`` does it (``engine.reshard``),
    recording a new generation below.
``tags``
    ``spread`` when the partitions' hash tags were chosen to spread over cluster slots (``Keyspace(tags=
    "spread")``, what a cluster gets); absent for the plain ``{pN}``. Written before ``partitions``, so a
    keyspace that records partitions without it was made with plain tags. A process with the other tags
    refuses to run: it would look for every key under other names.
``version``
    How the records are stored (``LAYOUT_VERSION``), so a later change can tell which layout it finds. A
    process serves a keyspace of its own layout or an older one it reads as it is, raising the stamp to its
    own; one stamped by a newer layout than it knows refuses to run. A keyspace with no stamp is layout 1
    (zsched 0.1.0, and 0.2.0 before issue #12), or new.
``generation``, ``partitions:<g>``, ``id_base:<g>``, ``opened_ms:<g>``
    Written by ``zsched reshard`` (``engine.reshard``): the current generation ``g`` (absent: 0, whose count is
    ``partitions``), and for each later one its partition count, its smallest id and when it was opened. A process's
    ``ZSCHED_PARTITIONS`` must match the current generation's count; every process reads all generations, so
    an old id still finds its partition. ``reshard`` (``"<g> <count>"``) marks a reshard under way.
"""

from __future__ import annotations

from typing import Any

from ..errors import LayoutError
from . import records
from .base import CoreBase
from .keys import Generation, Keyspace
from .steps import Command, Op

LAYOUT_VERSION = 2
"""The storage layout this code writes, recorded as ``version`` in the layout hash.

1. zsched 0.1.0, and 0.2.0 before issue #12 (never stamped: a keyspace without ``version`` is layout 1): one
   payload and one state record per notification, a many-recipient call included.
2. A pending many-recipient call is stored once per call; a recipient gets a record of its own once something
   happens to it alone (claimed, cancelled, rescheduled, ...). Layout 2 reads layout-1 records as they are,
   so a layout-1 keyspace is served without conversion and simply re-stamped 2.

A layout-1 process does not read this stamp: stop every one before a layout-2 process starts, since it
cannot read the records layout 2 writes.
"""


def check_layout(core: CoreBase) -> Op[None]:
    """Record the partition count, the hash tags and the layout version on first use, in one round trip; raise
    ``LayoutError`` when the count or the tags differ or the keyspace was written by a newer layout; raise an
    older stamp to ours."""
    key, ours, spread = core.keys.layout, len(core.keys.partitions), core.keys.tags == "spread"
    tags = [Command(("HEXISTS", key, "partitions")), Command(("HSETNX", key, "tags", "spread"))] if spread else []
    *tagged, _, stored, _, stamped, recorded_tags, fields = yield [
        *tags,  # before partitions: whoever records partitions of a spread keyspace recorded its tags first
        Command(("HSETNX", key, "partitions", ours)),
        Command(("HGET", key, "partitions")),
        Command(("HSETNX", key, "version", LAYOUT_VERSION)),  # a new or layout-1 keyspace: stamped ours
        Command(("HGET", key, "version")),
        Command(("HGET", key, "tags")),
        Command(("HGETALL", key)),
    ]
    mistaken = spread and bool(tagged[0]) and bool(tagged[1])  # it had partitions and no tags: plain ones
    if mistaken:
        yield [Command(("HDEL", key, "tags"))]
    version = _version(records.text(stamped), key)
    if version > LAYOUT_VERSION:  # checked first: a newer layout may record the partitions otherwise
        raise LayoutError(
            f"the keyspace {core.keys.prefix!r} was written by a newer zsched: storage layout {version} (recorded "
            f"in {key}), and this process understands layouts up to {LAYOUT_VERSION}; upgrade zsched here to "
            "the version the other processes run.",
            "version",
        )
    generations = read_generations(core.keys, fields)
    theirs = len(generations[-1].partitions) if len(generations) > 1 else int(records.text(stored))
    if theirs != ours:
        how = "created with" if len(generations) == 1 else f"resharded (generation {generations[-1].number}) to"
        raise LayoutError(
            f"this process has ZSCHED_PARTITIONS={ours}, but the keyspace {core.keys.prefix!r} was {how} "
            f"{theirs} partitions (recorded in {key}); start every process with ZSCHED_PARTITIONS={theirs}. "
            f"To change the count, run `zsched reshard --partitions {ours}`, which moves every pending notification.",
            "partitions",
        )
    theirs_tags = "spread" if recorded_tags is not None and records.text(recorded_tags) == "spread" else "plain"
    if mistaken or theirs_tags != core.keys.tags:
        theirs_tags = "plain" if mistaken else theirs_tags
        raise LayoutError(
            f"this process names partitions with {core.keys.tags} hash tags, but the keyspace {core.keys.prefix!r} "
            f"was created with {theirs_tags} ones (recorded in {key}); start every process with "
            f"ZSCHED_PARTITION_TAGS={theirs_tags}.",
            "partition_tags",
        )
    core.keys.adopt(generations)
    if version < LAYOUT_VERSION:
        # Layout 2 reads older records as they are, so raising the stamp is all an upgrade takes: a second round
        # trip, once per keyspace. Not atomic: a newer layout's process stamping between the read above and this
        # write would be lowered back, but processes of two layouts on one keyspace are not supported anyway.
        yield [Command(("HSET", key, "version", LAYOUT_VERSION))]


def follow_layout(core: CoreBase) -> Op[bool]:
    """Re-read the generations the layout records and follow them; True when the current one changed (a
    reshard opened a new generation since this process last looked)."""
    (fields,) = yield [Command(("HGETALL", core.keys.layout))]
    return adopt_layout(core, fields)


def adopt_layout(core: CoreBase, fields: Any) -> bool:
    """Follow the generations a layout hash (its HGETALL reply) records; True when the current one changed."""
    generations = read_generations(core.keys, fields)
    if generations[-1].number == core.keys.generations[-1].number:
        return False
    core.keys.adopt(generations)
    core.preferences_seen.clear()  # indexed by partition: of the old generation
    return True


def read_generations(keys: Keyspace, fields: Any) -> tuple[Generation, ...]:
    """The generations a layout hash (HGETALL) records, oldest first; generation 0 alone when never resharded."""
    layout = records.text_map(fields)
    first = int(layout.get("partitions") or len(keys.generations[0].partitions))
    found = [keys.generations[0] if len(keys.generations[0].partitions) == first else keys.generation(0, first, 0)]
    for number in range(1, int(layout.get("generation") or 0) + 1):
        known = next((g for g in keys.generations if g.number == number), None)
        count, base = int(layout[f"partitions:{number}"]), int(layout[f"id_base:{number}"])
        opened = int(layout.get(f"opened_ms:{number}") or 0)
        same = known is not None and known.id_base == base
        found.append(known if known is not None and same else keys.generation(number, count, base, opened))
    return tuple(found)


def _version(stamped: str, key: str) -> int:
    try:
        version = int(stamped)
    except ValueError:
        version = 0
    if version < 1:
        raise LayoutError(
            f"{key} records version={stamped!r}, which is not a layout number (1, 2, ...); zsched writes that "
            "field itself. Put back the number it held, or delete the field (HDEL) and the next process stamps "
            "its own layout, as long as no newer zsched has written this keyspace.",
            "version",
        )
    return version
