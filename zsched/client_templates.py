"""The template and inbox methods of ``Scheduler`` and ``AsyncScheduler``: the same names over the same core
operations (``engine.templates``, ``engine.inbox``), one class per driver, mixed into the two clients.

with Scheduler.from_url("redis://localhost") as zs:
    zs.put_template("welcome", {"en": {"title": "Hi {{ name }}", "message": "Welcome!"}})
    zs.schedule_template(["alice"], "welcome", {"name": "Alice"}, delay=60)
    zs.inbox("alice").unread
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .models import Inbox, ReadMarks, Rendered, ScheduleResult, Template

if TYPE_CHECKING:
    from .engine.core import Core
    from .engine.steps import Op, T


class SyncTemplates:
    """Templates and inboxes over a sync connection."""

    if TYPE_CHECKING:
        core: Core

        def run(self, op: Op[T]) -> T: ...

    def put_template(
        self, name: str, variants: Mapping[str, Mapping[str, str | None]], *, fallback_locale: str = "en"
    ) -> Template:
        """Save the template's next version: ``variants`` maps a locale (BCP 47) to its ``title``, ``message`` and
        optional ``html`` (Jinja2 sources); ``fallback_locale`` is used for recipients of no other variant."""
        return self.run(self.core.put_template(name, variants, fallback_locale=fallback_locale))

    def template(self, name: str, version: int | None = None) -> Template:
        """One version of a template (the latest by default); TemplateNotFoundError if none."""
        return self.run(self.core.template(name, version))

    def templates(self) -> list[Template]:
        """Every template's latest version, by name."""
        return self.run(self.core.templates())

    def preview_template(
        self,
        name: str,
        context: dict[str, Any] | None = None,
        *,
        version: int | None = None,
        locale: str | None = None,
        recipient: str = "preview",
    ) -> Rendered:
        """The template rendered with ``context`` as a recipient of ``locale`` would get it."""
        return self.run(self.core.preview_template(name, context, version=version, locale=locale, recipient=recipient))

    def delete_template(self, name: str) -> int:
        """Delete every version (returns how many); TemplateInUseError while pending notifications use it."""
        return self.run(self.core.delete_template(name))

    def schedule_template(
        self,
        recipients: Iterable[object],
        template: str,
        context: dict[str, Any] | None = None,
        *,
        version: int | None = None,
        at: datetime | None = None,
        delay: timedelta | float | None = None,
        type: str = "system",
        priority: str = "normal",
        data: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        created_by: str | None = None,
        channels: Iterable[str] = (),
    ) -> ScheduleResult:
        """Like ``schedule``, with the title, message (and HTML body) rendered from ``template`` with ``context``
        at send time, in each recipient's locale; TemplateRenderError now if the context cannot render."""
        return self.run(
            self.core.schedule_template(
                recipients,
                template,
                context,
                version=version,
                at=at,
                delay=delay,
                type=type,
                priority=priority,
                data=data,
                idempotency_key=idempotency_key,
                created_by=created_by,
                channels=channels,
            )
        )

    def inbox(self, recipient: str | int, *, limit: int = 50, before: str | None = None) -> Inbox:
        """The recipient's delivered notifications (their inbox), newest first, with the unread count."""
        return self.run(self.core.inbox(recipient, limit=limit, before=before))

    def mark_read(self, recipient: str | int, ids: Sequence[int]) -> ReadMarks:
        """Mark the recipient's notifications ``ids`` read; the unread count now is pushed to their sockets."""
        return self.run(self.core.mark_read(recipient, ids))

    def mark_all_read(self, recipient: str | int) -> ReadMarks:
        """Mark everything in the recipient's inbox read; the unread count (0) is pushed to their sockets."""
        return self.run(self.core.mark_all_read(recipient))


class AsyncTemplates:
    """Templates and inboxes over an asyncio connection."""

    if TYPE_CHECKING:
        core: Core

        async def run(self, op: Op[T]) -> T: ...

    async def put_template(
        self, name: str, variants: Mapping[str, Mapping[str, str | None]], *, fallback_locale: str = "en"
    ) -> Template:
        """Save the template's next version: ``variants`` maps a locale (BCP 47) to its ``title``, ``message`` and
        optional ``html`` (Jinja2 sources); ``fallback_locale`` is used for recipients of no other variant."""
        return await self.run(self.core.put_template(name, variants, fallback_locale=fallback_locale))

    async def template(self, name: str, version: int | None = None) -> Template:
        """One version of a template (the latest by default); TemplateNotFoundError if none."""
        return await self.run(self.core.template(name, version))

    async def templates(self) -> list[Template]:
        """Every template's latest version, by name."""
        return await self.run(self.core.templates())

    async def preview_template(
        self,
        name: str,
        context: dict[str, Any] | None = None,
        *,
        version: int | None = None,
        locale: str | None = None,
        recipient: str = "preview",
    ) -> Rendered:
        """The template rendered with ``context`` as a recipient of ``locale`` would get it."""
        return await self.run(
            self.core.preview_template(name, context, version=version, locale=locale, recipient=recipient)
        )

    async def delete_template(self, name: str) -> int:
        """Delete every version (returns how many); TemplateInUseError while pending notifications use it."""
        return await self.run(self.core.delete_template(name))

    async def schedule_template(
        self,
        recipients: Iterable[object],
        template: str,
        context: dict[str, Any] | None = None,
        *,
        version: int | None = None,
        at: datetime | None = None,
        delay: timedelta | float | None = None,
        type: str = "system",
        priority: str = "normal",
        data: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        created_by: str | None = None,
        channels: Iterable[str] = (),
    ) -> ScheduleResult:
        """Like ``schedule``, with the title, message (and HTML body) rendered from ``template`` with ``context``
        at send time, in each recipient's locale; TemplateRenderError now if the context cannot render."""
        return await self.run(
            self.core.schedule_template(
                recipients,
                template,
                context,
                version=version,
                at=at,
                delay=delay,
                type=type,
                priority=priority,
                data=data,
                idempotency_key=idempotency_key,
                created_by=created_by,
                channels=channels,
            )
        )

    async def inbox(self, recipient: str | int, *, limit: int = 50, before: str | None = None) -> Inbox:
        """The recipient's delivered notifications (their inbox), newest first, with the unread count."""
        return await self.run(self.core.inbox(recipient, limit=limit, before=before))

    async def mark_read(self, recipient: str | int, ids: Sequence[int]) -> ReadMarks:
        """Mark the recipient's notifications ``ids`` read; the unread count now is pushed to their sockets."""
        return await self.run(self.core.mark_read(recipient, ids))

    async def mark_all_read(self, recipient: str | int) -> ReadMarks:
        """Mark everything in the recipient's inbox read; the unread count (0) is pushed to their sockets."""
        return await self.run(self.core.mark_all_read(recipient))
