"""Read receipts and the inbox API: a recipient's delivered notifications (their inbox stream), the unread count,
mark one read, mark all read.

The inbox is the stream the websocket channel appends to (``delivery.inbox``): bounded by age and count, and
expiring when idle. What was read is a small hash beside it (``Partition.reads``): a stream id at or below which
everything is read (mark all), and the ids marked one by one above it; it expires with the inbox and holds no id
the inbox no longer has, so it is bounded as the inbox is. A notification marked read also records ``read_at`` in
its state. Every mark PUBLISHes the new unread count on the recipient's channel, which the WebSocket gateway
forwards (it counts new deliveries on top itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from ..errors import FieldError
from ..models import Inbox, InboxItem, ReadMarks, ms_to_datetime
from . import validation
from .base import CoreBase
from .keys import Keyspace
from .replies import MarkReadReply, ReadInboxReply
from .steps import Op, Script

MAX_PAGE = 1000
MAX_MARK_IDS = 1000
_decode_object = msgspec.json.Decoder(dict[str, Any]).decode


def read_inbox_step(keys: Keyspace, recipient: str, *, limit: int = 0, before: str | None = None) -> Script:
    """The step reading one page of the recipient's inbox (``limit`` 0: only the unread count)."""
    p = keys.for_recipient(recipient)
    return Script("read_inbox", [p.inbox(recipient), p.reads(recipient)], [before or "", limit])


def mark_read_step(keys: Keyspace, recipient: str, ids: Sequence[int] | None, now_arg: str = "") -> Script:
    """The step marking ``ids`` of the recipient read (None: everything in their inbox)."""
    p = keys.for_recipient(recipient)
    args: list[str | int] = [now_arg, recipient, p.user_channel(recipient), "all" if ids is None else "ids"]
    return Script("mark_read", [p.state, p.inbox(recipient), p.reads(recipient)], [*args, *(ids or ())])


class ReadOps(CoreBase):
    """A recipient's inbox and what they read."""

    def inbox(self, recipient: object, *, limit: int = 50, before: str | None = None) -> Op[Inbox]:
        """One page of the recipient's inbox, newest first, and the unread count of all of it."""
        who = validation.recipient(recipient)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise FieldError(f"limit must be a whole number from 1 to {MAX_PAGE}; got {limit!r}", "limit")
        if before is not None and not _stream_id(before):
            raise FieldError(f"before must be a stream id like 1700000000000-0; got {before[:40]!r}", "before")
        (raw,) = yield [read_inbox_step(self.keys, who, limit=limit, before=before)]
        got = ReadInboxReply.read(raw)
        items = [
            InboxItem(stream_id=sid, read=read, notification=_decode_object(body)) for sid, body, read in got.entries
        ]
        return Inbox(recipient=who, unread=got.unread, items=items, next_before=got.next_before)

    def mark_read(self, recipient: object, ids: Sequence[int]) -> Op[ReadMarks]:
        """Mark the recipient's sent notifications ``ids`` read (others' and unsent ones are left alone); says
        when each was read and the unread count of their inbox now."""
        who = validation.recipient(recipient)
        wanted = list(dict.fromkeys(ids))
        if not wanted or len(wanted) > MAX_MARK_IDS:
            raise FieldError(f"ids must name 1 to {MAX_MARK_IDS} notifications; got {len(wanted)}", "ids")
        for i in wanted:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i <= validation.MAX_ID:
                raise FieldError(f"ids must be notification ids (whole numbers); got {i!r}", "ids")
        (raw,) = yield [mark_read_step(self.keys, who, wanted, self.now_arg())]
        got = MarkReadReply.read(raw)
        marks = {i: ms_to_datetime(at) for i, at in zip(wanted, got.read_at, strict=True) if at >= 0}
        return ReadMarks(unread=got.unread, read_at=marks)

    def mark_all_read(self, recipient: object) -> Op[ReadMarks]:
        """Mark everything in the recipient's inbox read; the unread count is then 0."""
        who = validation.recipient(recipient)
        (raw,) = yield [mark_read_step(self.keys, who, None, self.now_arg())]
        return ReadMarks(unread=MarkReadReply.read(raw).unread)


def _stream_id(text: str) -> bool:
    ms, dash, seq = text.partition("-")
    return ms.isascii() and ms.isdigit() and len(ms) <= 20 and (not dash or (seq.isascii() and seq.isdigit()))
