"""``Core``: every zsched operation as a plan of Redis steps, with no I/O of its own.

The operations live in six modules by job: ``producer`` (schedule, cancel, reschedule), ``leases``
(claim, ack, fail, reap, purge), ``views`` (status, lists, stats) and ``contacts`` (contact data, erasure) and
``templates`` (templates, scheduling with one), ``reads`` (the inbox, read receipts).
``client.Scheduler`` and ``client.AsyncScheduler`` drive the same generators over a sync or an asyncio connection.
"""

from __future__ import annotations

from .base import DAY_MS, CoreBase, Retention
from .contacts import ContactOps
from .leases import Claimed, LeaseOps
from .reads import ReadOps
from .steps import Command, Op, Script, Step
from .templates import TemplateOps

__all__ = ["DAY_MS", "Claimed", "Command", "Core", "CoreBase", "Op", "Retention", "Script", "Step"]


class Core(TemplateOps, LeaseOps, ContactOps, ReadOps):
    """Builds the steps of each operation and turns replies into results; owns no connection."""
