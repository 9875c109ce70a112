"""Templates: named, versioned title/message/HTML sources with a variant per locale, stored under ``{tpl}``.

Saving a template makes its next version and never rewrites an old one, so a pending notification renders
with the version it was scheduled with; a version number is never given twice, not even after a delete, so a
worker may keep each version it read. A schedule call names a template and a context: it is rendered then
in every locale (a template or context that cannot render is a ``TemplateRenderError`` before anything is
written), and again by the worker at send time, for the recipient's current contact data.

Deleting is refused while anything pending may use the template. What uses it is an index (``template_uses``),
not a count: the counts would have to change in every script that moves a notification out of pending (claim,
ack, fail, cancel, purge), all in the partitions' hash tags while the template lives in ``{tpl}``, so no script
could keep both. The index is written by the schedule call (a reservation first, then one short member per
partition naming its ids, scored by due time) and checked when a delete asks: it reads those notifications'
statuses and names the uses that are over to ``delete_template.lua``, which deletes only if nothing else is left.
Each templated schedule call also prunes a few uses due over an hour ago, so the index stays about as large as
what is pending or recent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from ..errors import FieldError, TemplateInUseError, TemplateNotFoundError
from ..models import (
    Contact,
    Rendered,
    ScheduleResult,
    Template,
    TemplateRef,
    TemplateVariant,
    datetime_to_ms,
    json_encoder,
    ms_to_datetime,
)
from . import rendering, validation
from .base import new_op_id
from .contacts import lookup
from .producer import ProducerOps
from .replies import DeleteTemplateReply, PutTemplateReply, ReadReply, ReserveTemplateReply
from .steps import Command, Op, Script, Step
from .views import read_records

MAX_CONTEXT_BYTES = 16 * 1024
PRUNE_AFTER_MS = 3600 * 1000
"""How long after its due time a schedule call's use of a template is first checked for being over."""
PRUNE_USES = 4
PRUNE_IDS = 2000
"""Each templated schedule call checks at most ``PRUNE_USES`` old uses, reading about ``PRUNE_IDS`` records."""
_PENDING = frozenset({"pending", "processing"})
_CHECK_BATCH = 1000  # notification states read per script call when a delete checks what still uses a template


class _Stored(msgspec.Struct, kw_only=True):
    """A version as stored (its name and number are its keys)."""

    fallback_locale: str
    variants: dict[str, TemplateVariant]
    created_at: int = 0


_decode_stored = msgspec.json.Decoder(_Stored).decode


def template_of(name: str, version: int, raw: bytes | str) -> Template:
    """The template a stored version's JSON describes."""
    got = _decode_stored(raw)
    return Template(
        name=name,
        version=version,
        fallback_locale=got.fallback_locale,
        variants=got.variants,
        created_at=ms_to_datetime(got.created_at),
    )


def context(value: object) -> dict[str, Any]:
    """A template context: a JSON object of at most 16 KiB (None: empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FieldError(f"context must be a JSON object (a dict); got {validation.type_name(value)}", "context")
    try:
        size = len(json_encoder.encode(value))
    except (TypeError, ValueError, OverflowError) as exc:
        raise FieldError(f"context must be JSON-encodable: {exc}", "context") from None
    if size > MAX_CONTEXT_BYTES:
        raise FieldError(f"context must be at most {MAX_CONTEXT_BYTES} bytes as JSON; got {size}", "context")
    return value


def uses_of(ids: Sequence[int], partitions: int) -> list[str]:
    """The index members naming ``ids``: per partition, ``"<first>+<count>"`` for each run of ids that step by the
    partition count (a many-recipient call's ids do), so a call of 10,000 costs one member, not 10,000."""
    members: list[str] = []
    by_partition: dict[int, list[int]] = {}
    for i in ids:
        by_partition.setdefault(i % partitions, []).append(i)
    for group in by_partition.values():
        group.sort()
        start = prev = group[0]
        for i in group[1:]:
            if i != prev + partitions:
                members.append(f"{start}+{(prev - start) // partitions + 1}")
                start = i
            prev = i
        members.append(f"{start}+{(prev - start) // partitions + 1}")
    return members


def ids_of(member: str, partitions: int) -> list[int]:
    """The notification ids an index member names (none for a reservation)."""
    first, plus, count = member.partition("+")
    if not plus or not first.isdigit() or not count.isdigit():
        return []
    return [int(first) + i * partitions for i in range(int(count))]


class TemplateOps(ProducerOps):
    """Save, read, list, preview and delete templates, and schedule with one."""

    def put_template(
        self, name: object, variants: Mapping[str, Any], *, fallback_locale: str = "en", op_id: str | None = None
    ) -> Op[Template]:
        """Save the template's next version (version 1 when new); every variant must compile."""
        tname = rendering.name(name)
        checked = rendering.variants(variants, fallback_locale)
        draft = Template(name=tname, version=0, fallback_locale=fallback_locale, variants=checked, created_at=_EPOCH)
        rendering.compile_all(draft)
        # created_at is added by the script, from the server's clock
        body = json_encoder.encode({"fallback_locale": fallback_locale, "variants": checked}).decode()
        op = self.keys.template_op(op_id or new_op_id())
        keys = [self.keys.templates, self.keys.template_versions(tname), op, self.keys.template_counters]
        (raw,) = yield [Script("put_template", keys, [self.now_arg(), tname, body, self.op_ttl_ms])]
        got = PutTemplateReply.read(raw)
        return Template(
            name=tname,
            version=got.version,
            fallback_locale=fallback_locale,
            variants=checked,
            created_at=ms_to_datetime(got.created_ms),
        )

    def template(self, name: object, version: int | None = None) -> Op[Template]:
        """One version of a template (its latest when ``version`` is None); ``TemplateNotFoundError`` if none."""
        tname = rendering.name(name)
        if version is None:
            (latest,) = yield [Command(("HGET", self.keys.templates, tname))]
            if latest is None:
                raise TemplateNotFoundError(tname)
            version = int(latest)
        elif isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise FieldError(f"version must be a whole number from 1; got {version!r}", "version")
        (raw,) = yield [Command(("HGET", self.keys.template_versions(tname), version))]
        if raw is None:
            raise TemplateNotFoundError(tname, version)
        return template_of(tname, version, raw)

    def templates(self) -> Op[list[Template]]:
        """Every template's latest version, by name."""
        (latest,) = yield [Command(("HGETALL", self.keys.templates))]
        names = sorted((_text(k), int(v)) for k, v in latest.items())
        if not names:
            return []
        raws = yield [Command(("HGET", self.keys.template_versions(n), v)) for n, v in names]
        return [template_of(n, v, raw) for (n, v), raw in zip(names, raws, strict=True) if raw is not None]

    def preview_template(
        self,
        name: object,
        context_values: object = None,
        *,
        version: int | None = None,
        locale: str | None = None,
        recipient: str = "preview",
    ) -> Op[Rendered]:
        """The template rendered with ``context_values`` for ``locale`` (its fallback when None), as a recipient
        with that locale would receive it; ``TemplateRenderError`` when it cannot render."""
        found = yield from self.template(name, version)
        values = context(context_values)
        who = validation.recipient(recipient)
        return rendering.render(found, values, recipient=who, contact=Contact(recipient=who, locale=locale))

    def delete_template(self, name: object) -> Op[int]:
        """Delete every version of the template; returns how many. ``TemplateInUseError`` while a notification
        scheduled with it is pending (or a schedule call with it is under way); ``TemplateNotFoundError`` if none."""
        tname = rendering.name(name)
        uses_key = self.keys.template_uses(tname)
        (members,) = yield [Command(("ZRANGE", uses_key, 0, -1))]
        over: list[str] = []
        pending = 0
        for raw_member in members:
            member = _text(raw_member)
            if member.startswith("r:"):
                continue  # a reservation: the script decides whether it lapsed
            still = yield from self._still_pending(member)
            if still:
                pending += still
            else:
                over.append(member)
        if pending:
            raise TemplateInUseError(tname, pending)
        keys = [self.keys.templates, self.keys.template_versions(tname), uses_key, self.keys.template_op(new_op_id())]
        (raw,) = yield [Script("delete_template", keys, [self.now_arg(), tname, self.op_ttl_ms, *over])]
        got = DeleteTemplateReply.read(raw)
        if got.outcome < 0:
            raise TemplateNotFoundError(tname)
        if got.outcome == 0:
            raise TemplateInUseError(tname, got.count)
        return got.count

    def schedule_template(
        self,
        recipients: Iterable[object],
        template: object,
        context_values: object = None,
        *,
        version: int | None = None,
        at: datetime | None = None,
        delay: timedelta | float | None = None,
        type: object = "system",
        priority: object = "normal",
        data: object = None,
        idempotency_key: object = None,
        created_by: str | None = None,
        channels: Iterable[str] = (),
    ) -> Op[ScheduleResult]:
        """Schedule one notification per recipient rendered from ``template`` (its latest version unless
        ``version``) with ``context_values`` when sent, in each recipient's locale. Every variant is rendered
        with the context first (as the first recipient): one that cannot render is a ``TemplateRenderError``
        and nothing is written."""
        tname = rendering.name(template)
        values = context(context_values)
        people = validation.recipients(recipients)
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise FieldError(f"version must be a whole number from 1; got {version!r}", "version")
        reservation = f"r:{new_op_id()}"
        uses_key = self.keys.template_uses(tname)
        keys = [self.keys.templates, self.keys.template_versions(tname), uses_key]
        args: list[str | int] = [self.now_arg(), tname, "" if version is None else version, reservation]
        (raw,) = yield [Script("reserve_template", keys, [*args, self.stage_ttl_ms])]
        got = ReserveTemplateReply.read(raw)
        if not got.version:
            raise TemplateNotFoundError(tname, version)
        found = template_of(tname, got.version, got.body)
        try:
            first = people[0]
            contacts = yield from lookup(self.keys, [first])
            preview = rendering.check(found, values, first, contacts[first])
            result = yield from self.schedule(
                people,
                preview.title[: validation.MAX_TITLE] or tname,
                preview.message[: validation.MAX_MESSAGE],
                at=at,
                delay=delay,
                type=type,
                priority=priority,
                data=data,
                idempotency_key=idempotency_key,
                created_by=created_by,
                channels=channels,
                template=TemplateRef(name=tname, version=got.version, context=values),
            )
        except Exception:  # refused before anything was written: the reservation goes now, not when it lapses
            yield [Command(("ZREM", uses_key, reservation))]
            raise
        uses = uses_of(result.notification_ids, len(self.keys.partitions))
        due_ms = datetime_to_ms(result.scheduled_at)
        # Uses first, then the reservation goes: in this order a delete never finds neither. The same round trip
        # fetches a few uses due long ago, to prune (``_prune_uses``).
        _, _, old = yield [
            Command(("ZADD", uses_key, *[v for m in uses for v in (due_ms, m)])),
            Command(("ZREM", uses_key, reservation)),
            Command(("ZRANGE", uses_key, 1, self.rough_now_ms() - PRUNE_AFTER_MS, "BYSCORE", "LIMIT", 0, PRUNE_USES)),
        ]
        if old:
            yield from self._prune_uses(uses_key, [_text(m) for m in old])
        return result

    def _still_pending(self, member: str) -> Op[int]:
        """How many of the notifications an index member names are pending or processing (0: that use is over);
        their records are read in one round trip."""
        first = ids_of(member, 1)[:1]
        if not first:
            return 0
        p = self.keys.for_id(first[0])  # its generation's count: ids of a call step by it
        ids = ids_of(member, p.count)
        replies = yield [read_records(p, p.count, ids[i : i + _CHECK_BATCH]) for i in range(0, len(ids), _CHECK_BATCH)]
        return sum(
            1 for raw in replies for state, _ in ReadReply.read(raw).records if state and _status(state) in _PENDING
        )

    def _prune_uses(self, uses_key: str, old: list[str]) -> Op[None]:
        """Keep the index as small as what may still use the template: of the uses due over ``PRUNE_AFTER_MS`` ago,
        drop those whose notifications all left pending and the reservations that lapsed; one still pending is
        looked at again after another ``PRUNE_AFTER_MS``. The first is always read in full, the rest while at most
        ``PRUNE_IDS`` ids are read, so each templated schedule call does a bounded share of the work."""
        over: list[str] = []
        later: list[str] = []
        budget = PRUNE_IDS
        for member in old:
            if member.startswith("r:"):
                over.append(member)  # lapsed long ago: its caller never finished
                continue
            size = len(ids_of(member, len(self.keys.partitions)))
            if (over or later) and size > budget:
                break
            budget -= size
            (over if not (yield from self._still_pending(member)) else later).append(member)
        steps: list[Step] = []
        if over:
            steps.append(Command(("ZREM", uses_key, *over)))
        if later:
            steps.append(Command(("ZADD", uses_key, "XX", *[v for m in later for v in (self.rough_now_ms(), m)])))
        if steps:
            yield steps


_EPOCH = ms_to_datetime(0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _Status(msgspec.Struct):
    status: str = ""


_decode_status = msgspec.json.Decoder(_Status).decode


def _status(state: bytes | str) -> str:
    try:
        return _decode_status(state).status
    except msgspec.DecodeError:
        return ""
