"""Each Lua script's reply, read by name: one Struct per ``lua/<name>.lua``, quoting its ``Returns:`` header.

``read`` is the one place a reply's positions are spelled; operations use only the named fields. A unit
test checks each docstring against its script's header and runs each reader on the real script's reply.
"""

from __future__ import annotations

from typing import Any, Self

import msgspec

from ..errors import Refusal
from .records import text


class Reply(msgspec.Struct, frozen=True):
    """A script's reply, read by name; each subclass reads one script's."""

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields."""
        raise NotImplementedError


class ScheduleReply(Reply, frozen=True):
    """The reply of ``schedule.lua``: {'created', due_ms, now_ms, id...} | {'replayed', due_ms, now_ms, id...}
    | {'past', due_ms, now_ms} | {'conflict'} | {'over_quota', held, max_pending} | {'moved', generation}."""

    code: str
    due_ms: int = 0
    now_ms: int = 0
    ids: list[int] = []
    held: int = 0
    max_pending: int = 0
    generation: int = 0  # moved: the generation a reshard sealed the partition into

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields; a refusal carries no ids."""
        code = text(reply[0])
        if code == "moved":
            return cls(code, generation=int(reply[1]))
        if code == "conflict":
            return cls(code)
        if code == "over_quota":
            return cls(code, held=int(reply[1]), max_pending=int(reply[2]))
        return cls(code, int(reply[1]), int(reply[2]), [int(i) for i in reply[3:]])

    def refusal(self, key: str, creator: str = "", adding: int = 0) -> Refusal | None:
        """What went wrong, or None when the notifications were created (or replayed)."""
        if self.code in ("created", "replayed"):
            return None
        return Refusal(
            self.code,
            "schedule",
            due_ms=self.due_ms,
            now_ms=self.now_ms,
            key=key,
            creator=creator,
            held=self.held,
            adding=adding,
            limit=self.max_pending,
        )


class StageReply(Reply, frozen=True):
    """The reply of ``stage_schedule.lua``: {'staged', due_ms, now_ms, resumed, id...}
    | {'replayed', due_ms, now_ms, id...} | {'past', due_ms, now_ms} | {'conflict'}
    | {'over_quota', held, max_pending} | {'moved', generation}."""

    code: str
    due_ms: int = 0
    now_ms: int = 0
    ids: list[int] = []
    resumed: bool = False
    held: int = 0
    max_pending: int = 0
    generation: int = 0

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields; ``resumed`` when an earlier try of the same call had staged this part."""
        code = text(reply[0])
        if code == "staged":
            return cls(code, int(reply[1]), int(reply[2]), [int(i) for i in reply[4:]], resumed=int(reply[3]) == 1)
        got = ScheduleReply.read(reply)
        return cls(
            got.code,
            got.due_ms,
            got.now_ms,
            got.ids,
            held=got.held,
            max_pending=got.max_pending,
            generation=got.generation,
        )

    def refusal(self, key: str, creator: str = "", adding: int = 0) -> Refusal | None:
        """What refused the call, or None when this part is staged (or was committed by an earlier try)."""
        if self.code == "staged":
            return None
        return ScheduleReply(self.code, self.due_ms, self.now_ms, held=self.held, max_pending=self.max_pending).refusal(
            key, creator, adding
        )


class CommitReply(Reply, frozen=True):
    """The reply of ``commit_schedule.lua``: {'created', due_ms, now_ms, id...} | {'replayed', due_ms, now_ms, id...}
    | {'missing'} | {'moved', generation}."""

    code: str
    due_ms: int = 0
    now_ms: int = 0
    ids: list[int] = []
    generation: int = 0

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields; ``missing`` (the staged part expired before its commit) carries nothing."""
        code = text(reply[0])
        if code == "missing":
            return cls(code)
        if code == "moved":
            return cls(code, generation=int(reply[1]))
        return cls(code, int(reply[1]), int(reply[2]), [int(i) for i in reply[3:]])


class ChangeReply(Reply, frozen=True):
    """The reply of ``cancel.lua``: {'cancelled', now_ms} | {'missing'} | {'not_pending', current status}
    | {'moving'}; of ``reschedule.lua``: {'rescheduled', due_ms, now_ms} | {'past', due_ms, now_ms} | {'missing'}
    | {'not_pending', status} | {'moving'}; and of ``edit.lua``: {'edited', now_ms} | {'missing'} | {'not_pending',
    current status} | {'stale'} | {'moving'}."""

    code: str
    status: str = ""
    due_ms: int = 0
    now_ms: int = 0

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields (cancel's ``now_ms`` comes second, reschedule's third)."""
        code = text(reply[0])
        if code == "not_pending":
            return cls(code, status=text(reply[1]))
        if code == "cancelled":
            return cls(code, now_ms=int(reply[1]))
        if len(reply) == 3:
            return cls(code, due_ms=int(reply[1]), now_ms=int(reply[2]))
        return cls(code)

    def refusal(self, done: str, action: str, notification_id: int) -> Refusal | None:
        """What went wrong, or None when the code is ``done``."""
        if self.code == done:
            return None
        return Refusal(self.code, action, notification_id, self.status, self.due_ms, self.now_ms)


class BatchReply(Reply, frozen=True):
    """The reply of ``cancel_batch.lua``: {'cancelled', now_ms, cancelled, not_pending, missing}; of
    ``reschedule_batch.lua``: {'rescheduled', due_ms, now_ms, rescheduled, not_pending, missing}
    | {'past', due_ms, now_ms}; and of ``edit_batch.lua``: {'edited', now_ms, edited, not_pending, missing}
    | {'stale'}."""

    code: str
    due_ms: int = 0
    now_ms: int = 0
    changed: int = 0
    not_pending: int = 0
    missing: int = 0

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields (cancel's has no due time)."""
        code, numbers = text(reply[0]), [int(v) for v in reply[1:]]
        if code == "stale":
            return cls(code)
        if code == "past":
            return cls(code, numbers[0], numbers[1])
        if code in ("cancelled", "edited"):
            return cls(code, 0, *numbers)
        return cls(code, *numbers)


class ClaimReply(Reply, frozen=True):
    """The reply of ``claim.lua``: {now_ms, wait_us, sent_count, id, state JSON, payload JSON, ...}."""

    now_ms: int
    wait_us: int
    claimed: list[tuple[int, bytes | str, bytes | str]]
    sent: list[tuple[int, bytes | str, bytes | str]] = []

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields; ``claimed`` holds (id, state JSON, payload JSON) per notification claimed under the
        lease, ``sent`` the same for those the script delivered to their inbox itself (their state reads sent)."""
        records = [(int(reply[i]), reply[i + 1], reply[i + 2]) for i in range(3, len(reply), 3)]
        sent_count = int(reply[2])
        return cls(int(reply[0]), int(reply[1]), records[sent_count:], records[:sent_count])


class AckReply(Reply, frozen=True):
    """The reply of ``ack.lua``: {now_ms, acked count}."""

    now_ms: int
    acked: int

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields."""
        return cls(int(reply[0]), int(reply[1]))


class SkipReply(Reply, frozen=True):
    """The reply of ``skip.lua``: {now_ms, skipped count}."""

    now_ms: int
    skipped: int

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields."""
        return cls(int(reply[0]), int(reply[1]))


class RetryReply(Reply, frozen=True):
    """The reply of ``retry.lua``: {now_ms, retried count, failed count, dropped count}; dropped: dead letters
    removed because the dead set went over its cap."""

    now_ms: int
    retried: int
    failed: int
    dropped: int = 0

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields (an outcome kept by an earlier version has no dropped count: 0)."""
        return cls(int(reply[0]), int(reply[1]), int(reply[2]), int(reply[3]) if len(reply) > 3 else 0)


class ReapReply(Reply, frozen=True):
    """The reply of ``reap.lua``: {now_ms, requeued count, failed count, dropped count}; dropped: dead letters
    removed because the dead set went over its cap."""

    now_ms: int
    requeued: int
    failed: int
    dropped: int = 0

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields (an outcome kept by an earlier version has no dropped count: 0)."""
        return cls(int(reply[0]), int(reply[1]), int(reply[2]), int(reply[3]) if len(reply) > 3 else 0)


class RenewReply(Reply, frozen=True):
    """The reply of ``renew.lua``: {now_ms, lease deadline ms, id no longer held...}."""

    now_ms: int
    lease_until_ms: int
    lost: list[int]

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields; ``lost`` names the ids the caller's claim no longer holds."""
        return cls(int(reply[0]), int(reply[1]), [int(i) for i in reply[2:]])


class ReadReply(Reply, frozen=True):
    """The reply of ``read.lua``: {state JSON or false, payload JSON or false, ...}."""

    records: list[tuple[bytes | str | None, bytes | str | None]]

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields; ``records`` holds (state, payload) per id asked for, None where unknown."""
        return cls([(reply[i] or None, reply[i + 1] or None) for i in range(0, len(reply), 2)])


class PurgeReply(Reply, frozen=True):
    """The reply of ``purge.lua``: {now_ms, purged count}."""

    now_ms: int
    purged: int

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields."""
        return cls(int(reply[0]), int(reply[1]))


class RequeueDeadReply(Reply, frozen=True):
    """The reply of ``requeue_dead.lua``: {now_ms, requeued id...}."""

    now_ms: int
    ids: list[int]

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields."""
        return cls(int(reply[0]), [int(i) for i in reply[1:]])


class MarkDeliveredReply(Reply, frozen=True):
    """The reply of ``mark_delivered.lua``: {now_ms, outcome...}; per id in call order, when it was delivered
    (epoch ms), or -1 when it is not the recipient's to ack."""

    now_ms: int
    delivered_at_ms: list[int]

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields."""
        return cls(int(reply[0]), [int(i) for i in reply[1:]])


class PublishInboxReply(Reply, frozen=True):
    """The reply of ``publish_inbox.lua``: {stream id, ...}."""

    stream_ids: list[str]

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields."""
        return cls([text(i) for i in reply])


class RateLimitReply(Reply, frozen=True):
    """The reply of ``rate_limit.lua``: {1, tokens left (floored), 0} when allowed | {0, 0, ms until enough
    tokens}."""

    allowed: bool
    remaining: int
    retry_after_ms: int

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields."""
        return cls(int(reply[0]) == 1, int(reply[1]), int(reply[2]))


class SetContactReply(Reply, frozen=True):
    """The reply of ``set_contact.lua``: {contact JSON now ('' when none is left), opt-out entries it would make
    (if over max_opt_outs), or 0}; a change over max_opt_outs wrote nothing."""

    contact: bytes | str | None
    opt_outs_over: int

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields; ``contact`` is None when the recipient has no contact field left."""
        return cls(reply[0] or None, int(reply[1]))


class EraseReply(Reply, frozen=True):
    """The reply of ``erase_recipient.lua``: {contact removed (1 or 0), inbox entries removed}."""

    contact_removed: bool
    inbox_entries: int

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields."""
        return cls(int(reply[0]) == 1, int(reply[1]))


class PageReply(Reply, frozen=True):
    """The reply of ``page.lua``: {member, score, member, score, ...}."""

    entries: list[tuple[str, int]]

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields; ``entries`` holds (member, score) in the order asked for."""
        return cls([(text(reply[i]), int(float(reply[i + 1]))) for i in range(0, len(reply), 2)])


class HeartbeatReply(Reply, frozen=True):
    """The reply of ``heartbeat.lua``: {now_ms}."""

    now_ms: int

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields."""
        return cls(int(reply[0]))


class AddMinuteReply(Reply, frozen=True):
    """The reply of ``add_minute.lua``: {added}."""

    added: bool

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields; ``added`` is False when this call had already run."""
        return cls(int(reply[0]) == 1)


class AdvanceRecurringReply(Reply, frozen=True):
    """The reply of ``advance_recurring.lua``: {'created', schedule_id, state, now_ms}
    | {'replayed', schedule_id, state, now_ms} | {'advanced', schedule_id, state, now_ms}
    | {'resumed', schedule_id, state, now_ms} | {'finished', schedule_id, state, now_ms}
    | {'stale', schedule_id, state, now_ms} | {'missing'} | {'conflict'}."""

    code: str
    schedule_id: int = 0
    state: str = ""
    now_ms: int = 0

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields; ``missing`` (the schedule was deleted) and ``conflict`` (an idempotency key used
        for another request) carry nothing."""
        code = text(reply[0])
        if code in ("missing", "conflict"):
            return cls(code)
        return cls(code, int(reply[1]), text(reply[2]), int(reply[3]))


class StopRecurringReply(Reply, frozen=True):
    """The reply of ``stop_recurring.lua``: {'paused', state} | {'deleted', state} | {'missing'}."""

    code: str
    state: str = ""

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields; ``state`` is the schedule's (for delete: as it was)."""
        code = text(reply[0])
        return cls(code) if code == "missing" else cls(code, text(reply[1]))


class SetSocketsReply(Reply, frozen=True):
    """The reply of ``set_sockets.lua``: {written}."""

    written: bool

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields; ``written`` is False when changes alone came for a hash that is gone."""
        return cls(int(reply[0]) == 1)


class EnlistReply(Reply, frozen=True):
    """The reply of ``enlist.lua``: {now_ms, worker...}."""

    now_ms: int
    live: list[str]

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields; ``live`` is sorted."""
        return cls(int(reply[0]), [text(w) for w in reply[1:]])


class OwnReply(Reply, frozen=True):
    """The reply of ``own.lua``: {held, ttl_ms}."""

    held: bool
    ttl_ms: int

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields; ``ttl_ms`` is how long the lease holds (ours or another's)."""
        return cls(int(reply[0]) == 1, int(reply[1]))


class DisownReply(Reply, frozen=True):
    """The reply of ``disown.lua``: {released}."""

    released: bool

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields; ``released`` is False when the lease was not the worker's (any more)."""
        return cls(int(reply[0]) == 1)


class PutTemplateReply(Reply, frozen=True):
    """The reply of ``put_template.lua``: {version, created_at (epoch ms)}."""

    version: int
    created_ms: int

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields."""
        return cls(int(reply[0]), int(reply[1]))


class ReserveTemplateReply(Reply, frozen=True):
    """The reply of ``reserve_template.lua``: {version, version JSON}, or {0, ''} when there is no such template
    (or version)."""

    version: int
    body: bytes | str

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields; ``version`` 0 means not found."""
        return cls(int(reply[0]), reply[1])


class DeleteTemplateReply(Reply, frozen=True):
    """The reply of ``delete_template.lua``: {1, versions deleted}, {0, uses left} when still in use, or {-1, 0}
    when there is no such template."""

    outcome: int
    count: int

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields: ``outcome`` 1 deleted, 0 in use, -1 missing."""
        return cls(int(reply[0]), int(reply[1]))


class ReadInboxReply(Reply, frozen=True):
    """The reply of ``read_inbox.lua``: {unread, newest stream id or '', next_before or '', stream id, JSON, read
    (1 or 0), ...}."""

    unread: int
    newest: str | None
    next_before: str | None
    entries: list[tuple[str, bytes | str, bool]]

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields; the entries as (stream id, JSON, read)."""
        newest, after = _str(reply[1]), _str(reply[2])
        entries = [(_str(reply[i]), reply[i + 1], bool(int(reply[i + 2]))) for i in range(3, len(reply), 3)]
        return cls(int(reply[0]), newest or None, after or None, entries)


class MarkReadReply(Reply, frozen=True):
    """The reply of ``mark_read.lua``: {unread, read_at or -1 per id in order}."""

    unread: int
    read_at: list[int]

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields."""
        return cls(int(reply[0]), [int(v) for v in reply[1:]])


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class PauseReply(Reply, frozen=True):
    """The reply of ``pause.lua``: {when the scope was paused (epoch ms), 1 if this call paused it or 0 if it
    already was}."""

    since_ms: int
    new: bool

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields."""
        return cls(int(reply[0]), int(reply[1]) == 1)


class ResumeReply(Reply, frozen=True):
    """The reply of ``resume.lua``: {pauses lifted, notifications put back, parked ones left}."""

    lifted: int
    moved: int
    left: int

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields."""
        return cls(int(reply[0]), int(reply[1]), int(reply[2]))


class JoinDigestReply(Reply, frozen=True):
    """The reply of ``join_digest.lua``: {'held', digest id, close_ms} | {'flush', digest id, close_ms, id, state
    JSON, payload JSON, ...} | {'busy', digest id} | {'gone', current status}."""

    code: str
    digest: int = 0
    close_ms: int = 0
    status: str = ""
    members: list[tuple[int, bytes | str, bytes | str]] = []

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields; ``members`` holds (id, state JSON, payload JSON) of each member a flush carries."""
        code = text(reply[0])
        if code == "gone":
            return cls(code, status=text(reply[1]))
        if code == "busy":
            return cls(code, int(reply[1]))
        members = [(int(reply[i]), reply[i + 1], reply[i + 2]) for i in range(3, len(reply), 3)]
        return cls(code, int(reply[1]), int(reply[2]), members=members)


class SealReply(Reply, frozen=True):
    """The reply of ``seal.lua``: {generation sealed into, last sequence, last recurring sequence, recurring
    schedules here}."""

    generation: int
    sequence: int
    recurring_sequence: int
    recurring: int

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields."""
        return cls(int(reply[0]), int(reply[1]), int(reply[2]), int(reply[3]))


class MovingItem(msgspec.Struct, frozen=True):
    """One notification of a member being moved: its old id, due time and state JSON."""

    old_id: int
    due_ms: int
    state: str


class MovingGroup(msgspec.Struct, frozen=True):
    """One member of ``moving``: its entry, the payload its notifications share, their creator, and them."""

    entry: str
    payload: str
    created_by: str
    items: list[MovingItem]


class MoveOutReply(Reply, frozen=True):
    """The reply of ``move_out.lua``: {moving member, payload JSON, created_by, item count, (old id, due ms, state
    JSON) per item, ...}."""

    groups: list[MovingGroup]

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as groups, one per member (an empty list when nothing is left to move)."""
        groups: list[MovingGroup] = []
        at = 0
        while at < len(reply):
            entry, payload, creator = text(reply[at]), text(reply[at + 1]), text(reply[at + 2])
            count = int(reply[at + 3])
            at += 4
            items = [
                MovingItem(int(reply[at + 3 * k]), int(reply[at + 3 * k + 1]), text(reply[at + 3 * k + 2]))
                for k in range(count)
            ]
            at += 3 * count
            groups.append(MovingGroup(entry, payload, creator, items))
        return cls(groups)


class MoveInReply(Reply, frozen=True):
    """The reply of ``move_in.lua``: {new id...}."""

    ids: list[int]

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The new ids, in the order the notifications were given."""
        return cls([int(i) for i in reply])


class ForwardReply(Reply, frozen=True):
    """The reply of ``forward.lua``: {notifications forwarded}."""

    forwarded: int

    @classmethod
    def read(cls, reply: list[Any]) -> Self:
        """The reply as fields (0: an earlier run forwarded the member already)."""
        return cls(int(reply[0]))


READERS: dict[str, type[Reply]] = {
    "seal": SealReply,
    "move_out": MoveOutReply,
    "move_in": MoveInReply,
    "forward": ForwardReply,
    "schedule": ScheduleReply,
    "stage_schedule": StageReply,
    "commit_schedule": CommitReply,
    "cancel": ChangeReply,
    "reschedule": ChangeReply,
    "cancel_batch": BatchReply,
    "reschedule_batch": BatchReply,
    "edit": ChangeReply,
    "edit_batch": BatchReply,
    "claim": ClaimReply,
    "ack": AckReply,
    "retry": RetryReply,
    "skip": SkipReply,
    "reap": ReapReply,
    "renew": RenewReply,
    "purge": PurgeReply,
    "requeue_dead": RequeueDeadReply,
    "mark_delivered": MarkDeliveredReply,
    "publish_inbox": PublishInboxReply,
    "rate_limit": RateLimitReply,
    "read": ReadReply,
    "set_contact": SetContactReply,
    "erase_recipient": EraseReply,
    "page": PageReply,
    "heartbeat": HeartbeatReply,
    "add_minute": AddMinuteReply,
    "advance_recurring": AdvanceRecurringReply,
    "stop_recurring": StopRecurringReply,
    "set_sockets": SetSocketsReply,
    "enlist": EnlistReply,
    "own": OwnReply,
    "disown": DisownReply,
    "put_template": PutTemplateReply,
    "reserve_template": ReserveTemplateReply,
    "delete_template": DeleteTemplateReply,
    "read_inbox": ReadInboxReply,
    "mark_read": MarkReadReply,
    "pause": PauseReply,
    "resume": ResumeReply,
    "join_digest": JoinDigestReply,
}
"""Script name -> the Struct its reply reads into."""
