"""Editing content: new title, message or data for a pending notification, or for every pending one of a
schedule call (by its ``batch_id``).

The new payload is made here from the one read (Lua never decodes a payload), and a script replaces it only if
it is still the one read; when another edit came first, the edit reads again and retries. Each is a generator
of Redis steps (see ``steps``); nothing here does I/O of its own.
"""

from __future__ import annotations

from typing import Any

from ..errors import NotFoundError, NotPendingError, Refusal, refusal_error
from ..models import BatchChange, Notification, Payload, json_encoder, payload_decoder
from . import validation
from .base import CoreBase
from .keys import parse_recipient_member
from .replies import BatchReply, ChangeReply, ReadReply
from .steps import Command, Op, Script
from .views import ReadViews, read_records

TRIES = 5
"""How many times an edit reads and writes again after another edit changed the same payload first."""


class EditOps(ReadViews, CoreBase):
    """Change what pending notifications say."""

    def edit(
        self, notification_id: int | str, *, title: object = None, message: object = None, data: object = None
    ) -> Op[Notification]:
        """Give a pending notification a new title, message or data (None: unchanged); NotFoundError or
        NotPendingError otherwise. One of a many-recipient call gets content of its own: the others keep theirs."""
        notification_id = validation.notification_id(notification_id)
        validation.content(Payload(title="t", message=""), title, message, data)  # bad content reads nothing
        p = self.keys.for_id(notification_id)
        count = p.count  # its generation's: a call's recipient ids step by it
        for _ in range(TRIES):
            (raw,) = yield [read_records(p, count, [notification_id])]
            ((state, payload),) = ReadReply.read(raw).records
            if state is None or payload is None:
                again = yield from self.relocated(notification_id)
                if again is None:
                    raise NotFoundError(notification_id)
                return (yield from self.edit(again, title=title, message=message, data=data))
            new = _changed(payload, title, message, data)
            keys = [p.due, p.notifications, p.state, *p.other_dues, *p.call_lookup_keys, p.payload_refs, p.sequence]
            (reply,) = yield [
                Script(
                    "edit",
                    [*keys, self.op_key(p), p.moving],
                    [self.now_arg(), notification_id, _text(payload), new, self.op_ttl_ms, count],
                )
            ]
            got = ChangeReply.read(reply)
            if got.code != "stale":
                break
        refusal = got.refusal("edited", "edit", notification_id)
        if refusal is not None:
            raise refusal_error(refusal)
        return (yield from self.status(notification_id))

    def edit_batch(
        self,
        batch_id: str,
        *,
        title: object = None,
        message: object = None,
        data: object = None,
        only_for: str | None = None,
    ) -> Op[BatchChange]:
        """Give every pending notification of one schedule call a new title, message or data (None: unchanged),
        in one request; those that left pending keep what they had, as does one edited alone before. With
        ``only_for``, a user who did not create the call edits only the notification of it they receive (what
        the HTTP API lets a non-admin change)."""
        count = len(self.keys.partitions)
        parts = validation.current_batch_id(batch_id, count, self.keys.generations[-1].id_base)
        validation.content(Payload(title="t", message=""), title, message, data)  # bad content writes nothing
        replies: list[BatchReply] = []
        for first, n in parts:
            p = self.keys.for_id(first)
            if only_for is not None:
                (read,) = yield [Command(("HGET", p.notifications, first))]
                if read is None or payload_decoder.decode(read).created_by != only_for:
                    replies.append((yield from self._edit_received(first, n, only_for, title, message, data)))
                    continue
            if n == 1:  # one recipient in this partition: its own record and payload
                replies.append((yield from self._edit_one(first, title, message, data)))
                continue
            for _ in range(TRIES):
                (read,) = yield [Command(("HGET", p.notifications, first))]
                new = "" if read is None else _changed(read, title, message, data)
                (reply,) = yield [
                    Script(
                        "edit_batch",
                        [
                            *[p.notifications, p.state, p.calls, p.call_recipients, p.by_recipient],
                            *[p.payload_refs, p.sequence, self.op_key(p)],
                        ],
                        [self.now_arg(), first, n, count, "" if read is None else _text(read), new, self.op_ttl_ms],
                    )
                ]
                got = BatchReply.read(reply)
                if got.code != "stale":
                    break
            if got.code == "stale":
                raise refusal_error(Refusal("stale", "edit", first))
            replies.append(got)
        return BatchChange(
            batch_id=batch_id,
            changed=sum(r.changed for r in replies),
            not_pending=sum(r.not_pending for r in replies),
            missing=sum(r.missing for r in replies),
        )

    def _edit_received(
        self, first: int, n: int, user: str, title: object, message: object, data: object
    ) -> Op[BatchReply]:
        """``edit`` of the notification of a batch part that ``user`` receives, if any; the rest count as missing
        (they are not theirs to see)."""
        p = self.keys.for_id(first)
        step = len(self.keys.partitions)
        (members,) = yield [Command(("ZRANGE", p.by_recipient, f"({user} ", f"({user}!", "BYLEX"))]
        mine = [
            i
            for i in (parse_recipient_member(m)[1] for m in members)
            if i >= first and (i - first) % step == 0 and (i - first) // step < n
        ]
        changed = not_pending = 0
        for i in mine:
            one = yield from self._edit_one(i, title, message, data)
            changed, not_pending = changed + one.changed, not_pending + one.not_pending
        return BatchReply("edited", changed=changed, not_pending=not_pending, missing=n - changed - not_pending)

    def _edit_one(self, notification_id: int, title: object, message: object, data: object) -> Op[BatchReply]:
        """``edit`` of one notification, its outcome counted as a batch part's."""
        try:
            yield from self.edit(notification_id, title=title, message=message, data=data)
        except NotFoundError:
            return BatchReply("edited", missing=1)
        except NotPendingError:
            return BatchReply("edited", not_pending=1)
        return BatchReply("edited", changed=1)


def _changed(payload: Any, title: object, message: object, data: object) -> str:
    body: Payload = payload_decoder.decode(payload)
    return json_encoder.encode(validation.content(body, title, message, data)).decode()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
