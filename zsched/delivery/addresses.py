"""How a channel that sends outside zsched (email, SMS) finds where to: the contact data of a batch's recipients,
read in one round trip over the worker's asyncio connection, or none when the worker already read them for the
batch (to apply opt-outs) and shares them (``sharing``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

from ..engine.contacts import lookup
from ..engine.keys import Keyspace
from ..models import Contact

_shared: ContextVar[Mapping[str, Contact] | None] = ContextVar("zsched_batch_contacts", default=None)


@contextlib.contextmanager
def sharing(contacts: Mapping[str, Contact]) -> Iterator[None]:
    """Within this block (and the tasks it starts), ``read_contacts`` and ``shared_contacts`` answer from
    ``contacts``, read moments ago for the same batch, instead of reading them again."""
    token = _shared.set(contacts)
    try:
        yield
    finally:
        _shared.reset(token)


def shared_contacts(recipients: Sequence[str]) -> dict[str, Contact] | None:
    """The contacts of ``recipients`` from the batch's shared read, or None when it does not hold them all."""
    known = _shared.get()
    if known is None or any(r not in known for r in recipients):
        return None
    return {r: known[r] for r in recipients}


async def read_contacts(connection: Any, keyspace: Keyspace, recipients: Sequence[str]) -> dict[str, Contact]:
    """Each recipient's contact (None fields where nothing is set): the batch's shared read, or one HMGET per
    partition, in one pipeline."""
    known = shared_contacts(recipients)
    if known is not None:
        return known
    op = lookup(keyspace, recipients)
    try:
        steps = next(op)
        pipe = connection.pipeline(transaction=False)
        try:
            for step in steps:
                pipe.execute_command(*step.args)  # lookup yields plain commands only
            op.send(await pipe.execute())
        finally:
            await pipe.reset()  # a cancel before the commands went out would leave its connection held
    except StopIteration as done:
        found: dict[str, Contact] = done.value
        return found
    raise RuntimeError("contacts.lookup took more than one round trip")  # pragma: no cover
