"""Resharding: move pending notifications to a new partition count while producers and workers run.

A reshard opens a new keyspace generation (see ``keys.Generation`` and ``layout``), in four steps, each safe
to run again after an interruption:

1. ``open_generation``: take the one-reshard-at-a-time mark (``reshard`` in the layout), give the new
   partitions their sequences (the new ids start at ``id_base``, above every old id, so an id names its
   generation), record the generation in the layout, then seal every old partition (``seal.lua``): a schedule
   call there is refused with ``moved`` and the caller sends it to the new generation. A process that has not
   seen the new generation yet still claims and acks in the old one, which stays correct: nothing is in two
   places.
2. ``move_some``, repeated: per old partition, expired leases are reaped, then ``move_out.lua`` takes due
   and parked entries into ``moving`` (claimable nowhere), ``move_in.lua`` re-issues each notification in
   its recipient's new partition under a new id with the same due time, payload and state (idempotent by the
   old id), and ``forward.lua`` removes the old record, leaving ``old id -> new id`` in ``forward``. What is
   in ``moving`` after a kill is handed out again first and finished. So a notification is always in one
   place, claimable at its own due time: never lost, never early, never doubled by the move.
3. The move is over when no old partition holds anything due, parked, moving, processing (what workers hold
   is acked there, or retried into due and moved on the next pass) or inside a pending call.
4. ``finish``: contacts (and who has preferences or a websocket opt-out) are copied again to the recipients' new
   partitions where the new generation has none yet (the first copy is made as the generation opens, before any
   process follows it; this one takes what old-layout processes set meanwhile), and the mark is lifted.

Not moved: delivered history (sent, cancelled and failed records stay in the old partitions, where reads,
lists and stats still find them; inbox streams and read marks are not carried over), and recurring schedules
(the reshard refuses to start while any exist). See docs/resharding.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from ..errors import FieldError, ValidationError
from ..models import Payload, payload_decoder
from . import records
from .base import CoreBase
from .keys import Generation, Partition
from .layout import read_generations
from .leases import LeaseOps
from .replies import ForwardReply, MoveInReply, MoveOutReply, MovingGroup, SealReply
from .steps import Command, Op, Script, Step

MAX_PARTITIONS = 1024
"""The most partitions a reshard makes (each is a set of keys every worker round visits)."""

ID_MARGIN = 10_000_000
"""How many sequence numbers an old partition may still hand out between the reshard reading its sequence and
sealing it (one round trip): the new generation's ids start above them."""


class ReshardProgress(msgspec.Struct, kw_only=True):
    """Where a reshard stands: the generation it opened, the counts it moves between, how many notifications
    this run re-issued, what the old partitions still hold (due, parked, moving, processing, pending calls), and
    whether the move is over."""

    generation: int
    partitions_from: int
    partitions_to: int
    moved: int = 0
    entries: int = 0  # due entries moved (a many-recipient call counts once, whatever its recipients)
    left: int = 0
    done: bool = False
    recurring_left: int = 0  # recurring schedules found in the old partitions after the seal (not moved)


@dataclass
class _Plan:
    old: Generation
    new: Generation


def open_generation(core: CoreBase, partitions: int) -> Op[ReshardProgress]:
    """Open the generation with ``partitions`` partitions, or find the one an interrupted run opened; seal the
    old partitions. Raises ``ValidationError`` for a count out of range, the count the keyspace already has,
    another reshard under way, or recurring schedules in the keyspace."""
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise FieldError(f"partitions must be between 1 and {MAX_PARTITIONS}; got {partitions}", "partitions")
    plan = yield from _plan(core, partitions, opening=True)
    new = plan.new
    key = core.keys.layout
    (published,) = yield [Command(("HGET", key, "generation"))]
    if int(records.text(published or "0")) < new.number:
        counts = yield [Command(("HLEN", p.recurring)) for p in plan.old.partitions]
        if any(int(c) for c in counts):
            yield [Command(("HDEL", key, "reshard"))]
            raise ValidationError(
                f"{sum(int(c) for c in counts)} recurring schedule(s) live in the current partitions, and a reshard "
                "does not move them: delete them (zsched recurring delete ID), reshard, then create them again",
                "partitions",
            )
        old_parts = plan.old.partitions
        reads: list[Step] = [Command(("GET", name)) for p in old_parts for name in (p.sequence, p.recurring_sequence)]
        sequences = yield reads
        highest = max([int(records.text(s)) for s in sequences if s is not None] or [0])
        old_count = len(plan.old.partitions)
        floor = max((highest + ID_MARGIN) * old_count, plan.old.id_base)
        id_base = -(-floor // partitions) * partitions  # a multiple of the new count: id % count is the partition
        new = core.keys.generation(new.number, partitions, id_base)
        first = id_base // partitions - 1  # INCR hands out id_base // partitions: the first id is id_base + index
        paused = yield [Command(("HGETALL", plan.old.partitions[0].paused))]
        pauses = records.text_map(paused[0])
        steps: list[Step] = []
        for p in new.partitions:
            steps += [Command(("SET", p.sequence, first)), Command(("SET", p.recurring_sequence, first))]
            if pauses:
                steps.append(Command(("HSET", p.paused, *[v for kv in pauses.items() for v in kv])))
        yield steps
        # Contacts first, so a process that follows the new generation finds them (email addresses, zones, opt-outs).
        yield from _copy_contacts(plan.old.partitions, new)
        yield [
            Command(
                (
                    "HSET",
                    key,
                    f"partitions:{new.number}",
                    partitions,
                    f"id_base:{new.number}",
                    id_base,
                    f"opened_ms:{new.number}",
                    core.rough_now_ms(),
                    "generation",
                    new.number,
                )
            )
        ]
    replies = yield [seal_step(p, new.number) for p in plan.old.partitions]
    plan = yield from _plan(core, partitions, opening=False)
    sealed = [SealReply.read(r) for r in replies]
    stray = [s for s in sealed if s.generation != plan.new.number]
    if stray:
        raise ValidationError(
            f"an old partition was sealed into generation {stray[0].generation}, not {plan.new.number}: the layout "
            f"hash {key} was changed by hand; restore it",
            "partitions",
        )
    count = len(plan.old.partitions)
    if any(s.sequence * count + count > plan.new.id_base for s in sealed):  # never: ID_MARGIN is far above it
        raise ValidationError("an old partition handed out ids past the new generation's start", "partitions")
    left = yield from _left(plan.old.partitions)
    return ReshardProgress(
        generation=plan.new.number,
        partitions_from=count,
        partitions_to=partitions,
        left=left,
        done=left == 0,
        recurring_left=sum(s.recurring for s in sealed),
    )


def seal_step(p: Partition, generation: int) -> Script:
    """The step sealing old partition ``p`` into ``generation`` (its reply: ``SealReply``)."""
    return Script("seal", [p.sealed, p.sequence, p.recurring_sequence, p.recurring], [generation])


def _plan(core: CoreBase, partitions: int, *, opening: bool) -> Op[_Plan]:
    """Read the layout, follow it, and name the generation moved from and the one moved to; with ``opening``,
    take the reshard mark (or find this reshard's)."""
    key = core.keys.layout
    fields, tags = yield [Command(("HGETALL", key)), Command(("HGET", key, "tags"))]
    core.keys.configured_tags = "spread" if tags is not None and records.text(tags) == "spread" else "plain"
    layout = records.text_map(fields)
    if not layout:
        raise ValidationError(
            f"the keyspace {core.keys.prefix!r} has no layout yet ({key}): nothing was ever scheduled there, so "
            "there is nothing to reshard; start the processes with the partition count you want",
            "partitions",
        )
    generations = read_generations(core.keys, fields)
    core.keys.adopt(generations)
    current = generations[-1]
    mark = layout.get("reshard")
    if mark is None and opening:
        if len(current.partitions) == partitions:
            raise ValidationError(
                f"the keyspace {core.keys.prefix!r} has {partitions} partitions already; nothing to move", "partitions"
            )
        number = current.number + 1
        (took,) = yield [Command(("HSETNX", key, "reshard", f"{number} {partitions}"))]
        if not int(took):
            return (yield from _plan(core, partitions, opening=True))  # another run took it first: read it
        mark = f"{number} {partitions}"
    if mark is None:
        raise ValidationError(f"no reshard is under way in {core.keys.prefix!r}", "partitions")
    number_text, _, count_text = mark.partition(" ")
    number, count = int(number_text), int(count_text)
    if count != partitions:
        raise ValidationError(
            f"a reshard to {count} partitions (generation {number}) is under way; run zsched reshard --partitions "
            f"{count} to finish it first",
            "partitions",
        )
    if current.number == number:  # published: the old generation is the one before it
        return _Plan(generations[-2], current)
    return _Plan(current, core.keys.generation(number, partitions, 0))


def move_some(core: LeaseOps, partitions: int, *, batch: int = 100, budget: int | None = None) -> Op[ReshardProgress]:
    """One pass over the old partitions: reap their expired leases and move what they hold pending, at most
    ``batch`` members per script call and ``budget`` members in all (None: no limit); then count what is left.
    ``open_generation`` must have run."""
    plan = yield from _plan(core, partitions, opening=False)
    old, moved, spent = plan.old, 0, 0
    for p in old.partitions:
        yield from core.reap(p)  # leases of a worker that died holding them: back to due, to be moved
        while budget is None or spent < budget:
            room = batch if budget is None else min(batch, budget - spent)
            (raw,) = yield [_move_out(p, room)]
            groups = MoveOutReply.read(raw).groups
            if not groups:
                break
            moved += yield from _move(core, p, groups)
            spent += len(groups)
    left = yield from _left(old.partitions)
    return ReshardProgress(
        generation=plan.new.number,
        partitions_from=len(old.partitions),
        partitions_to=partitions,
        moved=moved,
        entries=spent,
        left=left,
        done=left == 0,
    )


def _move_out(p: Partition, limit: int) -> Script:
    return Script(
        "move_out",
        [*p.due_for_each, p.parked, p.moving, p.state, p.notifications, p.calls, p.call_recipients, p.by_recipient],
        [p.count, limit],
    )


def _move(core: CoreBase, old: Partition, groups: list[MovingGroup]) -> Op[int]:
    """Re-issue each group's notifications in their recipients' new partitions, then forward the old ids."""
    keys = core.keys
    calls: list[tuple[int, Partition, list[int]]] = []  # (group, new partition, item positions)
    steps: list[Step] = []
    for g, group in enumerate(groups):
        by_partition: dict[int, list[int]] = {}
        for k, item in enumerate(group.items):
            recipient = _recipient(item.state)
            by_partition.setdefault(keys.for_recipient(recipient).index, []).append(k)
        for index, positions in by_partition.items():
            p = keys.partitions[index]
            calls.append((g, p, positions))
            args: list[str | int] = [p.count, p.index, p.wakeup, group.payload]
            for k in positions:
                item = group.items[k]
                args += [item.old_id, item.due_ms, item.state]
            steps.append(
                Script(
                    "move_in",
                    [
                        *p.due_for_each,
                        p.notifications,
                        p.state,
                        p.by_recipient,
                        p.by_creator,
                        p.pending_by_creator,
                        p.counters,
                        p.sequence,
                        p.moved_from,
                        p.collapse,
                    ],
                    args,
                )
            )
    new_ids: list[dict[int, int]] = [{} for _ in groups]
    if steps:
        for (g, _, positions), raw in zip(calls, (yield steps), strict=True):
            new_ids[g].update(zip(positions, MoveInReply.read(raw).ids, strict=True))
    uses: list[Step] = []
    forwards: list[Step] = []
    for g, group in enumerate(groups):
        template = _template(group.payload)
        for k, item in enumerate(group.items):
            if template is not None:  # the template stays in use by the new id (a delete reads these uses)
                uses.append(Command(("ZADD", keys.template_uses(template), item.due_ms, f"{new_ids[g][k]}+1")))
        args = [group.entry, group.created_by]
        for k, item in enumerate(group.items):
            args += [item.old_id, new_ids[g][k], _recipient(item.state)]
        forwards.append(
            Script(
                "forward",
                [
                    old.moving,
                    old.state,
                    old.notifications,
                    old.by_recipient,
                    old.by_creator,
                    old.pending_by_creator,
                    old.payload_refs,
                    old.calls,
                    old.call_recipients,
                    old.call_starts,
                    old.call_pending,
                    old.forward,
                    old.counters,
                ],
                args,
            )
        )
    if uses:
        yield uses
    replies = yield forwards
    return sum(ForwardReply.read(r).forwarded for r in replies)


def _left(parts: tuple[Partition, ...]) -> Op[int]:
    steps: list[Step] = []
    for p in parts:
        steps += [Command(("ZCARD", key)) for key in (*p.due_sets, p.parked, p.moving, p.processing)]
        steps.append(Command(("HLEN", p.calls)))
    return sum(int(n) for n in (yield steps))


def finish(core: CoreBase, partitions: int, *, batch: int = 500) -> Op[ReshardProgress]:
    """Copy contacts, and the indexes of who has preferences and websocket opt-outs, to the recipients' new
    partitions (a contact the new generation has already is newer, and kept), then lift the reshard mark. The move
    must be over (``move_some`` says ``done``)."""
    plan = yield from _plan(core, partitions, opening=False)
    left = yield from _left(plan.old.partitions)
    if left:
        raise ValidationError(f"the old partitions still hold {left} entries; move them first", "partitions")
    yield from _copy_contacts(plan.old.partitions, plan.new, batch)  # what old-layout processes set meanwhile
    yield [Command(("HDEL", core.keys.layout, "reshard"))]
    return ReshardProgress(
        generation=plan.new.number, partitions_from=len(plan.old.partitions), partitions_to=partitions, done=True
    )


def _copy_contacts(old: tuple[Partition, ...], into: Generation, batch: int = 500) -> Op[None]:
    """Copy contacts, and the indexes of who has preferences and websocket opt-outs, from the ``old`` partitions to
    the recipients' partitions in generation ``into``, where it has none yet (one it has is newer). Done when the
    generation opens, before any process follows it, and again at the end for what old-layout processes set."""
    for p in old:
        cursor = 0
        while True:
            (reply,) = yield [Command(("HSCAN", p.contacts, cursor, "COUNT", batch))]
            cursor, flat = int(reply[0]), reply[1]  # the cursor comes back as a number or as its digits
            contacts = records.text_map(flat)
            if contacts:
                yield [
                    Command(("HSETNX", into.for_recipient(who).contacts, who, contact))
                    for who, contact in contacts.items()
                ]
            if cursor == 0:
                break
        for index in ("with_preferences", "websocket_opt_outs"):  # what a claim and a schedule call look up
            (members,) = yield [Command(("SMEMBERS", getattr(p, index)))]
            people = [records.text(m) for m in members or ()]
            if people:
                yield [Command(("SADD", getattr(into.for_recipient(who), index), who)) for who in people]


def _recipient(state: str) -> str:
    got = msgspec.json.decode(state)
    return str(got["recipient"])


def _template(payload: str) -> str | None:
    try:
        body: Payload = payload_decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return None if body.template is None else body.template.name
