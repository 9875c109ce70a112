"""Send-time rendering: a templated notification leaves with its template rendered for its recipient's current
contact data (their locale picks the variant), as the version it was scheduled with.

The worker renders a batch before handing it to its channels; a batch with no templated notification costs
nothing here. Per batch: one round trip for the recipients' contacts (none when the worker shares the read it made
for opt-outs), and one for the template versions not yet
cached (versions never change, so a worker keeps each it read). A notification whose template cannot render (or
no longer exists) fails for good with the reason: no retry could render it either.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import msgspec

from ..engine import rendering
from ..engine.contacts import lookup
from ..engine.steps import Command, Op
from ..engine.templates import template_of
from ..errors import PermanentDeliveryError, TemplateRenderError
from ..models import Contact, Notification, Template
from .addresses import shared_contacts
from .channel import Delivery, Outcome

CACHED_VERSIONS = 256


class TemplateGoneError(PermanentDeliveryError):
    """A notification's template cannot be rendered at send time (its version is gone, or it does not render
    with the recipient's data): it fails for good, saying why."""


class Renderer:
    """Renders the templated notifications of a batch; keeps the template versions it read."""

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler  # an AsyncScheduler: its run() drives the engine's steps
        self.keys = scheduler.core.keys
        self._versions: OrderedDict[tuple[str, int], Template] = OrderedDict()

    async def render(self, batch: Sequence[Notification]) -> list[Notification | BaseException]:
        """Each notification ready to send (rendered when templated), or why it cannot be."""
        templated = [n for n in batch if n.template is not None]
        if not templated:
            return list(batch)
        people = [n.recipient for n in templated]
        contacts = shared_contacts(people) or await self.scheduler.run(lookup(self.keys, people))
        wanted = {(n.template.name, n.template.version) for n in templated if n.template is not None}
        missing = [k for k in wanted if k not in self._versions]
        if missing:
            found = await self.scheduler.run(self._read(missing))
            for key, template in zip(missing, found, strict=True):
                if template is not None:
                    self._versions[key] = template
            while len(self._versions) > CACHED_VERSIONS:
                self._versions.popitem(last=False)
        return [self._one(n, contacts) for n in batch]

    def _read(self, versions: list[tuple[str, int]]) -> Op[list[Template | None]]:
        raws = yield [Command(("HGET", self.keys.template_versions(name), v)) for name, v in versions]
        return [None if raw is None else template_of(n, v, raw) for (n, v), raw in zip(versions, raws, strict=True)]

    def _one(self, n: Notification, contacts: dict[str, Contact]) -> Notification | BaseException:
        ref = n.template
        if ref is None:
            return n
        template = self._versions.get((ref.name, ref.version))
        if template is None:
            return TemplateGoneError(f"template {ref.name!r} version {ref.version} no longer exists")
        try:
            got = rendering.render(template, ref.context, recipient=n.recipient, contact=contacts.get(n.recipient))
        except TemplateRenderError as exc:
            return TemplateGoneError(str(exc))
        return msgspec.structs.replace(n, title=got.title, message=got.message, html=got.html)


async def deliver_rendered(delivery: Delivery, renderer: Renderer, batch: Sequence[Notification]) -> list[Outcome]:
    """``delivery.deliver`` for the batch rendered; a notification that could not render is not handed over, and
    its outcome is why."""
    ready = await renderer.render(batch)
    outcomes: list[Outcome] = [r if isinstance(r, BaseException) else None for r in ready]
    positions = [i for i, r in enumerate(ready) if isinstance(r, Notification)]
    if positions:
        sent = await delivery.deliver([r for r in ready if isinstance(r, Notification)])
        if len(sent) != len(positions):
            raise RuntimeError(f"delivery returned {len(sent)} outcomes for {len(positions)} notifications")
        for position, outcome in zip(positions, sent, strict=True):
            outcomes[position] = outcome
    return outcomes
