"""Every key and channel name zsched uses, in one place.

All keys of a partition share one hash tag, ``{pN}``, so every script touches one Redis Cluster slot. With
``tags="spread"`` (what a cluster gets), partition N of M takes the first of ``pN``, ``pN.1``, ``pN.2``, ...
whose slot falls in the N-th of M equal slot ranges, so M partitions spread evenly over a cluster's nodes
(``{p0}``, ``{p1}``, ``{p4}`` and ``{p5}`` all hash to the last third of the slots).
A recipient's notifications all live in the partition its id hashes to; a notification id carries its
partition (``id % partitions``), so reading one needs no lookup.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Literal

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from ..errors import ConfigError

Tags = Literal["plain", "spread"]
"""How partitions name their hash tags: ``plain`` ``{pN}``; ``spread`` chosen so they spread over slots."""

CLAIM_ORDER: tuple[str, ...] = ("urgent", "high", "normal", "low")
"""Priorities in the order a claim takes due notifications: every due urgent one before any high one, ..."""


@dataclass(frozen=True)
class Partition:
    """The keys and channels of one partition, e.g. ``zsched:{p0}:due``."""

    prefix: str
    index: int
    label: str = ""  # the hash tag's text: ``p<index>`` when empty
    count: int = 1  # how many partitions its generation has: a call's recipient ids step by it

    @cached_property
    def tag(self) -> str:
        """The common head of every key here, hash tag included."""
        return f"{self.prefix}:{{{self.label or f'p{self.index}'}}}"

    @cached_property
    def slot(self) -> int:
        """The Redis Cluster slot every key and channel of this partition hashes to."""
        return int(key_slot(self.tag.encode()))

    @cached_property
    def due(self) -> str:
        """ZSET: pending ``normal`` notification id (or ``-<call id>`` for a many-recipient call) -> due time in
        epoch ms (each other priority has its own)."""
        return f"{self.tag}:due"

    def due_for(self, priority: str) -> str:
        """ZSET: the due set of one priority: ``due`` for normal, ``due:urgent``, ``due:high``, ``due:low``."""
        return self.due if priority == "normal" else f"{self.tag}:due:{priority}"

    @cached_property
    def due_sets(self) -> tuple[str, ...]:
        """Every due set, in the order claims take from them: urgent, high, normal, low."""
        return tuple(self.due_for(priority) for priority in CLAIM_ORDER)

    @cached_property
    def due_for_each(self) -> list[str]:
        """The due sets of normal, urgent, high and low, in that order: the KEYS a script takes that may move a
        notification of any priority out of due."""
        return [self.due, *self.other_dues]

    @cached_property
    def other_dues(self) -> list[str]:
        """The due sets of urgent, high and low, in that order: the KEYS every script that moves a notification
        into or out of due takes after its own, so it can pick the notification's set from its state."""
        return [self.due_for(priority) for priority in ("urgent", "high", "low")]

    @cached_property
    def processing(self) -> str:
        """ZSET: claimed notification id -> lease deadline in epoch ms."""
        return f"{self.tag}:processing"

    @cached_property
    def sent(self) -> str:
        """ZSET: sent notification id -> time its record is purged, epoch ms."""
        return f"{self.tag}:sent"

    @cached_property
    def cancelled(self) -> str:
        """ZSET: cancelled notification id -> time its record is purged, epoch ms."""
        return f"{self.tag}:cancelled"

    @cached_property
    def failed(self) -> str:
        """ZSET, the dead letters: failed notification id -> time its record is purged, epoch ms."""
        return f"{self.tag}:failed"

    @cached_property
    def expired(self) -> str:
        """ZSET: expired notification id (claimed past its expires_at or, with on_late skip, too late) -> time its
        record is purged, epoch ms."""
        return f"{self.tag}:expired"

    @cached_property
    def throttled(self) -> str:
        """ZSET: throttled notification id (over its recipient's limit, of a type whose limit drops) -> time its
        record is purged (epoch ms)."""
        return f"{self.tag}:throttled"

    @cached_property
    def collapsed(self) -> str:
        """ZSET: collapsed notification id (a newer one with its recipient and collapse key replaced it while
        pending) -> time its record is purged, epoch ms."""
        return f"{self.tag}:collapsed"

    @cached_property
    def collapse(self) -> str:
        """HASH: ``"<recipient> <collapse key>"`` -> id of the newest notification scheduled with them; purge
        drops the field with that notification's record."""
        return f"{self.tag}:collapse"

    @cached_property
    def notifications(self) -> str:
        """HASH: notification id -> payload JSON (title, message, type, priority, data, ...); a many-recipient
        call's payload is stored once, under the call id (its first recipient's id)."""
        return f"{self.tag}:notifications"

    @cached_property
    def state(self) -> str:
        """HASH: notification id -> state JSON (status, recipient, attempts, times, last_error; ``call``: the
        call id its payload is stored under, when not its own). A recipient still pending inside a call has
        none yet (see ``calls``)."""
        return f"{self.tag}:state"

    @cached_property
    def calls(self) -> str:
        """HASH: call id -> ``"<due> <created> <count> <next> <offset> <priority> <created_by>"`` for each
        many-recipient call with recipients still pending in it. Its recipients' ids are ``call id +
        i * partitions``; those below ``next`` were claimed, ``offset`` is where recipient ``next`` starts in
        ``call_recipients``. Such a call sits in its due set once, as ``-<call id>``."""
        return f"{self.tag}:calls"

    @cached_property
    def call_recipients(self) -> str:
        """HASH: call id -> the call's recipients, space-separated, in id order (while the call is pending)."""
        return f"{self.tag}:call_recipients"

    @cached_property
    def call_starts(self) -> str:
        """ZSET: pending call id -> itself, so the pending call holding a recipient id is the nearest at or below."""
        return f"{self.tag}:call_starts"

    @cached_property
    def call_pending(self) -> str:
        """STRING: how many recipients are still pending inside calls (the rest of pending is counted in due)."""
        return f"{self.tag}:call_pending"

    @cached_property
    def payload_refs(self) -> str:
        """HASH: call id -> records still sharing the payload stored under it; purge removes the payload
        with the last."""
        return f"{self.tag}:payload_refs"

    @cached_property
    def call_keys(self) -> list[str]:
        """The KEYS a script that writes pending calls takes after its own, in this order: calls,
        call_recipients, call_starts, call_pending, payload_refs."""
        return [self.calls, self.call_recipients, self.call_starts, self.call_pending, self.payload_refs]

    @cached_property
    def call_lookup_keys(self) -> list[str]:
        """The KEYS a script that takes recipients out of pending calls (claim, cancel, reschedule) takes after
        its own, in this order: calls, call_recipients, call_starts, call_pending, and by_recipient (a recipient
        missing from it was purged, so its call must not hand it out)."""
        return [self.calls, self.call_recipients, self.call_starts, self.call_pending, self.by_recipient]

    @cached_property
    def dead_keys(self) -> list[str]:
        """The KEYS a script that fails notifications takes last, to drop dead letters over the cap as purge
        removes records: notifications, by_recipient, by_creator, payload_refs."""
        return [self.notifications, self.by_recipient, self.by_creator, self.payload_refs]

    @cached_property
    def by_recipient(self) -> str:
        """ZSET at score 0: ``"<recipient> <id, 16 digits>"`` (see ``recipient_member``), so a lex range
        lists one recipient's ids."""
        return f"{self.tag}:by_recipient"

    @cached_property
    def by_creator(self) -> str:
        """ZSET at score 0: ``"<created_by> <id, 16 digits>"`` (as ``recipient_member``), so a lex range lists
        the ids one creator scheduled in this partition."""
        return f"{self.tag}:by_creator"

    @cached_property
    def pending_by_creator(self) -> str:
        """HASH: created_by -> how many of their notifications here are pending or processing (the quota's count)."""
        return f"{self.tag}:pending_by_creator"

    @cached_property
    def contacts(self) -> str:
        """HASH: recipient -> contact JSON (``email``, ``phone``, ``locale``: only the fields that are set), for
        the recipients whose notifications live here."""
        return f"{self.tag}:contacts"

    @cached_property
    def with_preferences(self) -> str:
        """SET: recipients with a zone or quiet hours in their contact, so a schedule call looks them up only
        when some recipient has any."""
        return f"{self.tag}:with_preferences"

    @cached_property
    def websocket_opt_outs(self) -> str:
        """SET: recipients with an opt-out of the websocket channel (or of every channel), whose websocket-only
        notifications the claim leaves to the worker, which applies it; everyone else's stay on its fast path."""
        return f"{self.tag}:websocket_opt_outs"

    @cached_property
    def skipped(self) -> str:
        """ZSET: skipped notification id (its recipient opted out of every channel it names, for its type) -> time
        its record is purged (epoch ms)."""
        return f"{self.tag}:skipped"

    @cached_property
    def counters(self) -> str:
        """HASH: lifetime totals (scheduled, claimed, sent, retried, failed, cancelled, expired, collapsed, reaped,
        purged, and dead_dropped: dead letters dropped over the cap)."""
        return f"{self.tag}:counters"

    @cached_property
    def sequence(self) -> str:
        """STRING: the last sequence number handed out; ids are ``sequence * partitions + index``."""
        return f"{self.tag}:sequence"

    @cached_property
    def owner(self) -> str:
        """STRING: the id of the worker that owns this partition (claims, reaps and wakes for it); expires one
        owner lease after its last renewal (``own.lua``)."""
        return f"{self.tag}:owner"

    @cached_property
    def paused(self) -> str:
        """HASH: ``*`` (everything) or a notification type -> when it was paused (epoch ms); every partition
        holds its own copy, since a claim may read only its own partition's keys (one Cluster slot)."""
        return f"{self.tag}:paused"

    @cached_property
    def parked(self) -> str:
        """ZSET: ``<priority> <due member>`` -> its due time (epoch ms): what a claim took out of due because
        its type was paused, waiting for resume to put it back."""
        return f"{self.tag}:parked"

    def recipient_counts(self, tail: str) -> str:
        """HASH: recipient -> how many of one type a claim handed out in one window; ``tail`` is
        ``<window index>:<type>`` (the claim script adds it to the prefix this gives for ``""``)."""
        return f"{self.tag}:rcount:{tail}"

    @cached_property
    def wakeup(self) -> str:
        """Channel: the new earliest due time, published when it moves earlier, so workers wake."""
        return f"{self.tag}:wakeup"

    @cached_property
    def recurring(self) -> str:
        """HASH: recurring schedule id -> ``"<status> <next_ms> <count> <first_id> <definition>\\n<payload>"``: its
        state (active, paused or finished; the time of its latest occurrence; occurrences created; the first
        notification id of the latest one), its definition as a JSON array, and the occurrences' payload JSON."""
        return f"{self.tag}:recurring"

    @cached_property
    def recurring_due(self) -> str:
        """ZSET: active recurring schedule id -> the time of its pending occurrence, when a worker advances it."""
        return f"{self.tag}:recurring_due"

    @cached_property
    def recurring_sequence(self) -> str:
        """STRING: the last recurring schedule sequence number; ids are ``sequence * partitions + index``."""
        return f"{self.tag}:recurring_sequence"

    @cached_property
    def recurring_by_creator(self) -> str:
        """ZSET at score 0: ``"<created_by> <schedule id, 16 digits>"``, so a lex range lists one creator's."""
        return f"{self.tag}:recurring_by_creator"

    def staged(self, call: str) -> str:
        """HASH: one partition's part of a many-partition schedule call, written but not yet visible (expires)."""
        return f"{self.tag}:staged:{call}"

    def digest_open(self, recipient: str, digest_key: str) -> str:
        """STRING: the id of the digest open now for one recipient and digest key (a recipient id has no spaces),
        expiring after the digest's close (join_digest.lua)."""
        return f"{self.tag}:digest_open:{recipient} {digest_key}"

    def digest(self, digest_id: str) -> str:
        """HASH: one digest (its id is its first member's): ``close`` (epoch ms), ``max``, ``members`` (ids,
        space-separated), and while a worker sends it, ``holder`` (that call's op id), ``until`` and ``taken``;
        ``closed`` once it takes no more members. join_digest.lua adds the id to the prefix this gives for ``""``."""
        return f"{self.tag}:digest:{digest_id}"

    def op(self, op_id: str) -> str:
        """STRING: the outcome of one state-changing script call, kept ``op_ttl_ms`` (a minute), so a retry of
        that call (its reply was lost, or came after the socket timeout) gets the same answer, not a second run."""
        return f"{self.tag}:op:{op_id}"

    def ops(self, bucket: int) -> str:
        """HASH: op id -> outcome of each schedule call whose step the caller built in one time bucket (see
        ``CoreBase.op_slot``); kept ``op_ttl_ms`` past its last write. One hash per bucket costs about 70 bytes
        an operation where a key per operation (``op``) costs about 130."""
        return f"{self.tag}:ops:{bucket}"

    def idempotency(self, key: str) -> str:
        """STRING: the remembered answer to a schedule call made with this idempotency key."""
        return f"{self.tag}:idempotency:{key}"

    def inbox(self, recipient: str) -> str:
        """STREAM: the recipient's delivered notifications, capped, for resuming clients."""
        return f"{self.tag}:inbox:{recipient}"

    def reads(self, recipient: str) -> str:
        """HASH: what the recipient marked read in their inbox: ``upto`` -> the stream id at or below which
        everything is read (mark all), and notification id -> when it was marked read, for those above it. It
        expires with the inbox (``keep_ms`` after its last change) and holds no id its inbox no longer has."""
        return f"{self.tag}:read:{recipient}"

    def user_channel(self, recipient: str) -> str:
        """Channel: live delivery to the recipient's connected clients."""
        return f"{self.tag}:user:{recipient}"

    @cached_property
    def sealed(self) -> str:
        """STRING: the generation this partition was resharded into; once set, schedule calls here are refused
        with ``moved`` and the caller sends them to that generation (see ``zsched.engine.reshard``)."""
        return f"{self.tag}:sealed"

    @cached_property
    def moving(self) -> str:
        """ZSET: ``<priority> <due member>`` -> its due time: what the mover took out of due and has not yet
        forwarded to the new generation (not claimable; a re-run of the mover finishes each)."""
        return f"{self.tag}:moving"

    @cached_property
    def forward(self) -> str:
        """HASH: old notification id -> the id it was re-issued under in the new generation, kept so the old id
        still answers."""
        return f"{self.tag}:forward"

    @cached_property
    def moved_from(self) -> str:
        """HASH: old notification id -> the id it was re-issued under here, so moving one twice creates it once."""
        return f"{self.tag}:moved_from"


@dataclass(frozen=True)
class Generation:
    """One partition count's keyspace: the ids at or above ``id_base`` (up to the next generation's) live in
    its partitions, partition ``id % len(partitions)``."""

    number: int
    id_base: int
    partitions: tuple[Partition, ...]
    opened_ms: int = 0  # when a reshard opened it (epoch ms; 0 for generation 0)

    def for_recipient(self, recipient: str) -> Partition:
        """The partition of this generation that holds (or held) this recipient's notifications."""
        if len(self.partitions) == 1:
            return self.partitions[0]
        return self.partitions[zlib.crc32(recipient.encode()) % len(self.partitions)]


class Keyspace:
    """Maps recipients and notification ids to partitions under one key prefix."""

    def __init__(self, prefix: str = "zsched", partitions: int = 1, *, tags: Tags = "plain") -> None:
        if partitions < 1:
            raise ConfigError(f"partitions must be at least 1; got {partitions}", "partitions")
        if not prefix or any(c in prefix for c in "{} \t\r\n"):
            raise ConfigError(f"prefix must be non-empty with no braces or spaces; got {prefix!r}", "prefix")
        if tags not in ("plain", "spread"):
            raise ConfigError(f"tags must be 'plain' or 'spread'; got {tags!r}", "partition_tags")
        self.prefix = prefix
        self.configured_tags: Tags = tags
        self.tags: Tags = "plain" if partitions == 1 else tags  # one partition: {p0} either way
        self.generations: tuple[Generation, ...] = (self.generation(0, partitions, 0),)
        self.partitions = self.generations[-1].partitions
        """The partitions of the current generation: where new notifications go and workers claim."""

    def generation(self, number: int, partitions: int, id_base: int, opened_ms: int = 0) -> Generation:
        """Generation ``number`` with ``partitions`` partitions: generation 0 has the tags ``{pN}`` (or spread
        ones), a later one ``{g<number>pN}`` (or spread ones with that head), so two never share a key."""
        tags = "plain" if partitions == 1 else self.configured_tags
        head = "p" if number == 0 else f"g{number}p"
        labels = [
            spread_label(i, partitions, head) if tags == "spread" else ("" if number == 0 else f"{head}{i}")
            for i in range(partitions)
        ]
        parts = tuple(Partition(self.prefix, i, label, partitions) for i, label in enumerate(labels))
        return Generation(number, id_base, parts, opened_ms)

    def adopt(self, generations: tuple[Generation, ...]) -> None:
        """Follow the generations the layout records: the last is current, the older still hold old ids."""
        self.generations = generations
        self.partitions = generations[-1].partitions

    @property
    def layout(self) -> str:
        """HASH: how this keyspace is laid out (``partitions``), recorded by the first process that uses it."""
        return f"{self.prefix}:{{meta}}:layout"

    @property
    def processes(self) -> str:
        """ZSET: process id -> when its last heartbeat arrived, epoch ms (every worker and gateway beats)."""
        return f"{self.prefix}:{{meta}}:processes"

    @property
    def owners(self) -> str:
        """ZSET: worker id -> when it last enlisted for partitions, epoch ms (``enlist.lua``): the live workers
        the partitions are shared among."""
        return f"{self.prefix}:{{meta}}:owners"

    def minute(self, epoch_minute: int) -> str:
        """HASH: delivery counts and lateness buckets of one minute (server clock), added to by every worker."""
        return f"{self.prefix}:{{meta}}:minute:{epoch_minute}"

    def meta_op(self, op_id: str) -> str:
        """STRING: the outcome of one call of a script on ``{meta}`` keys, so a resend of it does nothing twice."""
        return f"{self.prefix}:{{meta}}:op:{op_id}"

    def process(self, process_id: str) -> str:
        """STRING: one process's description (host, pid, partitions, in flight...), expiring without heartbeats."""
        return f"{self.prefix}:{{meta}}:process:{process_id}"

    def sockets(self, process_id: str) -> str:
        """HASH: recipient -> WebSockets one gateway process has open for them, expiring without heartbeats."""
        return f"{self.prefix}:{{meta}}:sockets:{process_id}"

    @property
    def templates(self) -> str:
        """HASH: template name -> its latest version number (every template, for listing)."""
        return f"{self.prefix}:{{tpl}}:names"

    @property
    def template_counters(self) -> str:
        """HASH: template name -> the last version number it was given, kept when the template is deleted, so no
        version number is ever given twice (a worker keeps the versions it read, by name and number)."""
        return f"{self.prefix}:{{tpl}}:counters"

    def template_versions(self, name: str) -> str:
        """HASH: version number -> that version's JSON (fallback locale, variants, created_at); never rewritten."""
        return f"{self.prefix}:{{tpl}}:versions:{name}"

    def template_uses(self, name: str) -> str:
        """ZSET: what may still use the template: ``"<first id>+<count>"`` members (ids first + i * partitions), one
        per partition of each schedule call, scored by its due time, and ``"r:<op id>"`` reservations of calls under
        way, scored with when they lapse (epoch ms). A delete, and each templated schedule call (a few old ones),
        drop the members no longer pending."""
        return f"{self.prefix}:{{tpl}}:uses:{name}"

    def template_op(self, op_id: str) -> str:
        """STRING: the outcome of one call of a script on ``{tpl}`` keys, so a resend of it does nothing twice."""
        return f"{self.prefix}:{{tpl}}:op:{op_id}"

    def for_recipient(self, recipient: str) -> Partition:
        """The partition holding this recipient's notifications (a stable hash of the id)."""
        return self.generations[-1].for_recipient(recipient)

    def for_id(self, notification_id: int) -> Partition:
        """The partition holding this notification: in the newest generation whose ``id_base`` is at or below
        it (ids carry their partition, ``id % partitions`` of that generation)."""
        for generation in reversed(self.generations):
            if notification_id >= generation.id_base:
                parts = generation.partitions
                return parts[notification_id % len(parts)]
        return self.partitions[notification_id % len(self.partitions)]  # never: generation 0 starts at 0


@cache
def spread_label(index: int, count: int, head: str = "p") -> str:
    """The hash tag text of partition ``index`` of ``count`` under ``tags="spread"``: the first of
    ``<head><index>``, ``<head><index>.1``, ... whose slot is in the ``index``-th of ``count`` equal slot ranges."""
    low = index * REDIS_CLUSTER_HASH_SLOTS // count
    high = max(low + 1, (index + 1) * REDIS_CLUSTER_HASH_SLOTS // count)
    for attempt in range(1_000_000):
        label = f"{head}{index}.{attempt}" if attempt else f"{head}{index}"
        if low <= key_slot(label.encode()) < high:
            return label
    raise ConfigError(f"no hash tag found for partition {index} of {count}; use fewer partitions", "partitions")


def recipient_member(recipient: str, notification_id: int) -> str:
    """The ``by_recipient`` member of one notification: ``"<recipient> <id, 16 digits>"`` (as the Lua builds it);
    ``by_creator`` members are built the same way from the creator."""
    return f"{recipient} {notification_id:016d}"


def recipient_bounds(recipient: str, before: int | None = None) -> tuple[str, str]:
    """ZREVRANGEBYLEX (max, min), both exclusive, over a recipient's members with ids below ``before`` (all
    when None)."""
    # '!' sorts right after ' ', so "<recipient>!" is above every "<recipient> <digits>" member.
    upper = f"({recipient}!" if before is None else f"({recipient_member(recipient, before)}"
    return upper, f"({recipient} "


def parse_recipient_member(member: bytes | str) -> tuple[str, int]:
    """The recipient and notification id a ``by_recipient`` member names."""
    recipient, _, digits = (member.decode() if isinstance(member, bytes) else member).rpartition(" ")
    return recipient, int(digits)
