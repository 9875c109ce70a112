"""The keyspace's layout, recorded in Redis: a process that disagrees with it refuses to run.

Notification ids carry their partition (``id % partitions``), so two processes with different partition
counts would strand or misroute each other's notifications. The first process to use a keyspace records its
count; every later one compares. Changing the count means moving every pending notification (a resharding
tool is planned); until then, keep ``ZSCHED_PARTITIONS`` the same everywhere.
"""

from __future__ import annotations

from ..errors import LayoutError
from . import records
from .base import CoreBase
from .steps import Command, Op


def check_layout(core: CoreBase) -> Op[None]:
    """Record the partition count on first use; raise ``LayoutError`` naming both counts when it differs."""
    key, ours = core.keys.layout, len(core.keys.partitions)
    _, stored = yield [Command(("HSETNX", key, "partitions", ours)), Command(("HGET", key, "partitions"))]
    theirs = int(records.text(stored))
    if theirs != ours:
        raise LayoutError(
            f"this process has ZSCHED_PARTITIONS={ours}, but the keyspace {core.keys.prefix!r} was created with "
            f"{theirs} partitions (recorded in {key}); start every process with ZSCHED_PARTITIONS={theirs}. "
            "Changing the count needs every pending notification moved (resharding).",
            "partitions",
        )
