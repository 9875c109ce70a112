"""How a channel that sends outside zsched (email, SMS) finds where to: the contact data of a batch's recipients,
read in one round trip over the worker's asyncio connection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..engine.contacts import lookup
from ..engine.keys import Keyspace
from ..models import Contact


async def read_contacts(connection: Any, keyspace: Keyspace, recipients: Sequence[str]) -> dict[str, Contact]:
    """Each recipient's contact (None fields where nothing is set): one HMGET per partition, one pipeline."""
    op = lookup(keyspace, recipients)
    try:
        steps = next(op)
        pipe = connection.pipeline(transaction=False)
        for step in steps:
            pipe.execute_command(*step.args)  # lookup yields plain commands only
        op.send(await pipe.execute())
    except StopIteration as done:
        found: dict[str, Contact] = done.value
        return found
    raise RuntimeError("contacts.lookup took more than one round trip")  # pragma: no cover
