"""Lease operations, the worker's side: claim due notifications under a lease, renew it while delivering,
ack or fail them, reap expired leases, purge records past retention.

Each is a generator of Redis steps (see ``steps``); nothing here does I/O of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from ..models import Notification, Payload, payload_decoder, state_decoder
from . import records
from .base import CoreBase
from .keys import Partition
from .replies import AckReply, ClaimReply, PurgeReply, ReapReply, RenewReply, RetryReply, SkipReply
from .shaping import RecipientLimit, limits_arg
from .steps import Op, Script, Step


class Poisoned(msgspec.Struct):
    """A claimed notification whose stored record cannot be decoded: its id, the attempt its claim counted (0
    when even that cannot be read) and why; the worker fails it for good at once."""

    id: int
    attempts: int
    reason: str


class ChannelReport(msgspec.Struct, omit_defaults=True):
    """What a failed attempt of a notification with several channels leaves in its state: the channels
    delivered so far (a retry skips them) and each failed channel's error."""

    done: list[str] = msgspec.field(default_factory=list)
    channel_errors: dict[str, str] = msgspec.field(default_factory=dict)


_report_encoder = msgspec.json.Encoder()
_state_encoder = msgspec.json.Encoder()


class InboxPlan(msgspec.Struct, frozen=True):
    """How a claim delivers websocket-only notifications itself, as the inbox channel would: each inbox keeps
    about ``maxlen`` entries for ``keep_ms``; ``unnamed`` also takes those naming no channel (the worker's
    default channels are the websocket alone), not only those naming ``["websocket"]``."""

    maxlen: int
    keep_ms: int
    unnamed: bool = True
    sharded: bool = False  # on a Redis Cluster: published with SPUBLISH, which the gateway SSUBSCRIBEs to


class Claimed(msgspec.Struct):
    """What one claim returned: the server's time, how long until the next due one, the batch, the claimed
    records that could not be decoded (each is failed alone; the rest of the batch is not affected), and the
    records the claim delivered itself under an ``InboxPlan`` (already sent: nothing is left to do for them)."""

    now_ms: int
    wait_ms: float
    notifications: list[Notification]
    poisoned: list[Poisoned] = msgspec.field(default_factory=list)
    sent: list[tuple[int, bytes | str, bytes | str]] = msgspec.field(default_factory=list)

    def sent_notifications(self) -> list[Notification]:
        """The notifications the claim delivered itself, read from their (sent) records; decoded only when asked,
        since a worker with nobody to tell needs only their count. One that does not decode is left out."""
        payloads: dict[bytes | str, Payload] = {}  # a many-recipient call's recipients share one payload text
        # ... and, but for the recipient, one state: each Notification after the first is a copy with its own id
        # and recipient (a third of the cost of making one from the records, its datetimes included)
        made: dict[tuple[bytes | str, bytes], Notification] = {}
        out: list[Notification] = []
        for notification_id, state, payload in self.sent:
            try:
                body = payloads.get(payload)
                if body is None:
                    body = payloads[payload] = payload_decoder.decode(payload)
                st = state_decoder.decode(state)
                key = (payload, _state_encoder.encode(msgspec.structs.replace(st, recipient="")))
                like = made.get(key)
                if like is None:
                    like = made[key] = Notification.from_stored(notification_id, st, body)
                out.append(msgspec.structs.replace(like, id=notification_id, recipient=st.recipient))
            except records.UNDECODABLE:
                continue
        return out


class LeaseOps(CoreBase):
    """Operations a worker runs on one partition."""

    def claim(
        self,
        partition: Partition,
        limit: int,
        lease_ms: int,
        inbox: InboxPlan | None = None,
        ahead: int = 0,
        limits: Sequence[RecipientLimit] = (),
    ) -> Op[Claimed]:
        """Claim up to ``limit`` due notifications of one partition under a lease; with ``inbox``, deliver the
        websocket-only ones in the same script call (appended to their inbox, published, marked sent), but those to
        recipients with a websocket opt-out, which the worker applies. Those past their expiry end ``expired`` in the
        same call, count against ``limit``, and are not returned.

        ``ahead`` more claims of up to ``limit`` go out in the same round trip, each delivering websocket-only
        notifications until the first it would have to claim (which stays due): a worker draining a backlog the
        claim delivers keeps the server busy between its round trips, and still holds one batch at most.
        ``limits`` (see ``shaping``): one over its recipient's limit stays pending, due again when its window
        ends, or (a limit that drops) ends ``throttled``, counting against ``limit`` and not returned."""
        p = partition
        mode = "" if inbox is None else "all" if inbox.unnamed else "named"
        keys = [
            p.due,
            p.processing,
            p.notifications,
            p.state,
            p.counters,
            *p.other_dues,
            *p.call_lookup_keys,
            p.sent,
            p.pending_by_creator,
            p.inbox(""),  # the inboxes' prefix: the script adds each recipient
        ]
        args: list[str | int] = [
            self.now_arg(),
            limit,
            lease_ms,
            self.op_ttl_ms,
            len(self.keys.partitions),
            mode,
            self.retention.sent_ms,
            inbox.maxlen if inbox else "",
            inbox.keep_ms if inbox else "",
            p.user_channel(""),
            self.retention.cancelled_ms,  # expired records are kept as long as cancelled ones
        ]
        publish = "SPUBLISH" if inbox is not None and inbox.sharded else "PUBLISH"
        keys += [p.expired, p.paused, p.parked, p.recipient_counts(""), p.throttled]
        shaped = limits_arg(limits)
        keys.append(p.websocket_opt_outs)
        steps: list[Step] = [Script("claim", [*keys, self.op_key(p)], [*args, 1, publish, shaped])]
        if inbox is not None:
            steps += [Script("claim", [*keys, self.op_key(p)], [*args, 0, publish, shaped]) for _ in range(ahead)]
        first, *more = got = [ClaimReply.read(reply) for reply in (yield steps)]
        notifications: list[Notification] = []
        poisoned: list[Poisoned] = []
        for notification_id, state, payload in (record for one in got for record in one.claimed):  # the first's
            try:
                notifications.append(records.notification(notification_id, state, payload))
            except records.UNDECODABLE as exc:
                reason = f"cannot decode the stored record: {exc}"
                poisoned.append(Poisoned(notification_id, records.attempts(state), reason))
        last = more[-1] if more else first  # its wait counts what the claims ahead took too
        sent = [record for one in got for record in one.sent]
        return Claimed(first.now_ms, -1 if last.wait_us < 0 else last.wait_us / 1000, notifications, poisoned, sent)

    def ack(self, partition: Partition, ids: Sequence[int]) -> Op[tuple[int, int]]:
        """Mark delivered notifications sent; returns (server now ms, how many were acked)."""
        p = partition
        (reply,) = yield [
            Script(
                "ack",
                [p.due, p.processing, p.state, p.sent, p.counters, p.pending_by_creator, *p.other_dues, self.op_key(p)],
                [self.now_arg(), self.retention.sent_ms, self.op_ttl_ms, *ids],
            )
        ]
        got = AckReply.read(reply)
        return got.now_ms, got.acked

    def fail(
        self,
        partition: Partition,
        failures: Sequence[tuple[Notification | Poisoned, str]],
        delays_ms: Mapping[int, int | None] | None = None,
        reports: Mapping[int, ChannelReport] | None = None,
    ) -> Op[tuple[int, int]]:
        """Retry each failed delivery after the policy's backoff, or fail it for good when none is left.

        ``delays_ms`` (notification id -> delay, None: no retry left) passes backoffs the caller already
        drew, so a jittered delay it logs is the one applied. A failure is applied only while the
        notification is still under the lease of the claim it names (``n.attempts``); a stale report is
        ignored. A record that could not be decoded (``Poisoned``) is failed as its claim counted it; one whose
        state even Lua cannot read (attempt 0) while the claim still holds it. ``reports`` (notification id ->
        ``ChannelReport``) records per-channel outcomes of notifications with several channels. Returns
        (retried, failed). A failure that takes the dead set over ``retention.max_dead`` drops its oldest
        dead letters in the same script call (counted in the ``dead_dropped`` total).
        """
        p = partition
        args: list[str | int] = [
            self.now_arg(),
            self.retention.failed_ms,
            p.wakeup,
            self.op_ttl_ms,
            self.retention.max_dead,
        ]
        for n, error in failures:
            delay = delays_ms[n.id] if delays_ms is not None else self.retry.delay_ms(n.attempts)
            report = reports.get(n.id) if reports is not None else None
            encoded = _report_encoder.encode(report).decode() if report is not None else ""
            args += [n.id, n.attempts, -1 if delay is None else delay, error[:2000], encoded]
        (reply,) = yield [
            Script(
                "retry",
                [
                    p.due,
                    p.processing,
                    p.state,
                    p.failed,
                    p.counters,
                    p.pending_by_creator,
                    *p.other_dues,
                    *p.dead_keys,
                    self.op_key(p),
                ],
                args,
            )
        ]
        got = RetryReply.read(reply)
        return got.retried, got.failed

    def skip(self, partition: Partition, opted: Sequence[tuple[Notification, Sequence[str], str | None]]) -> Op[int]:
        """Apply opt-outs to notifications held under this claim (``n.attempts``): each ``(n, channels opted out of,
        reason)`` with a reason ends ``skipped`` (every channel it names was opted out of), one without records the
        channels it will not go through and stays processing. Returns how many ended skipped."""
        p = partition
        args: list[str | int] = [self.now_arg(), self.retention.cancelled_ms, self.op_ttl_ms]
        for n, channels, reason in opted:
            args += [n.id, n.attempts, ",".join(channels), reason or ""]
        keys = [p.processing, p.state, p.skipped, p.counters, p.pending_by_creator, self.op_key(p)]
        (reply,) = yield [Script("skip", keys, args)]
        return SkipReply.read(reply).skipped

    def renew(self, partition: Partition, held: Sequence[Notification], lease_ms: int) -> Op[list[int]]:
        """Extend to now + ``lease_ms`` the leases of ``held`` that its claim (``n.attempts``) still holds;
        returns the ids it no longer holds (the lease expired and was reaped, perhaps claimed again)."""
        p = partition
        args: list[str | int] = [self.now_arg(), lease_ms]
        for n in held:
            args += [n.id, n.attempts]
        (reply,) = yield [Script("renew", [p.processing, p.state], args)]
        return RenewReply.read(reply).lost

    def reap(self, partition: Partition, limit: int = 1000, lease_ms: int | None = None) -> Op[tuple[int, int]]:
        """Hand expired leases back to due (or fail them after the last attempt); (requeued, failed).

        Each expiry is recorded as that attempt's ``last_error``, naming ``lease_ms`` (the lease workers take)
        when given: "lease expired after 2.0 s on attempt 1: the worker stopped or stalled"."""
        p = partition
        (reply,) = yield [
            Script(
                "reap",
                [p.due, p.processing, p.state, p.failed, p.counters, p.pending_by_creator, *p.other_dues, *p.dead_keys],
                [
                    self.now_arg(),
                    limit,
                    self.retry.max_attempts,
                    self.retention.failed_ms,
                    p.wakeup,
                    lease_ms or "",
                    self.retention.max_dead,
                ],
            )
        ]
        got = ReapReply.read(reply)
        return got.requeued, got.failed

    def purge(self, partition: Partition, limit: int = 1000) -> Op[int]:
        """Remove up to ``limit`` terminal records past their retention (sent, cancelled, failed, expired,
        collapsed, throttled, then skipped), with their index entries; how many. Fewer than ``limit`` means none is left
        past retention."""
        p = partition
        (reply,) = yield [
            Script(
                "purge",
                [
                    p.sent,
                    p.cancelled,
                    p.failed,
                    p.notifications,
                    p.state,
                    p.by_recipient,
                    p.counters,
                    p.by_creator,
                    p.payload_refs,
                    p.expired,
                    p.collapsed,
                    p.collapse,
                    p.throttled,
                    p.skipped,
                ],
                [self.now_arg(), limit],
            )
        ]
        return PurgeReply.read(reply).purged
