"""``Core``: every zsched operation as a plan of Redis steps, with no I/O of its own.

The operations live in modules by job: ``producer`` (schedule, cancel, reschedule), ``leases`` (claim,
ack, fail, reap, purge), ``views`` (status, lists, stats), ``batches`` (a whole schedule call), ``edits``
(new content), ``contacts`` (contact data, erasure), ``recurring`` (recurring schedules), ``templates``
(templates, scheduling with one), ``reads`` (the inbox, read receipts), ``preferences`` (zones, quiet hours,
local delivery times), ``pauses`` (pause and resume delivery) and ``digests`` (a recipient's digest members, held
and sent as one).
``client.Scheduler`` and ``client.AsyncScheduler`` drive the same generators over a sync or an asyncio connection.
"""

from __future__ import annotations

from .base import DAY_MS, CoreBase, Retention
from .batches import BatchOps
from .contacts import ContactOps
from .digests import DigestOps
from .edits import EditOps
from .leases import Claimed, LeaseOps
from .pauses import PauseOps
from .preferences import PreferenceOps
from .reads import ReadOps
from .recurring import RecurringOps
from .steps import Command, Op, Script, Step
from .templates import TemplateOps

__all__ = ["DAY_MS", "Claimed", "Command", "Core", "CoreBase", "Op", "Retention", "Script", "Step"]


class Core(
    RecurringOps, TemplateOps, PreferenceOps, LeaseOps, DigestOps, BatchOps, EditOps, ContactOps, ReadOps, PauseOps
):
    """Builds the steps of each operation and turns replies into results; owns no connection."""
