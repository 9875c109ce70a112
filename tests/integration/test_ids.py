"""Notification ids as the library takes them: an int, or a string of ASCII digits (as the HTTP paths take);
anything else is a FieldError naming the parameter, never a TypeError from deep inside."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from zsched import AsyncScheduler, Scheduler
from zsched.engine import requeue_dead
from zsched.errors import FieldError

BAD = ["abc", "", " 1", "1.0", "-1", "²", "0x1", 1.0, None, True, -1, 2**63]


def test_numeric_strings_are_ids_everywhere(zs: Scheduler) -> None:
    first, second = zs.schedule(["ada", "bob"], "t", "m", delay=timedelta(hours=1)).notification_ids
    assert zs.status(str(first)).id == first
    assert zs.reschedule(str(first), delay=timedelta(hours=2)).scheduled_status == "pending"
    assert zs.cancel(str(second)).scheduled_status == "cancelled"
    assert zs.run(requeue_dead(zs.core, [str(first)])) == []  # not a dead letter: left out, no error


@pytest.mark.parametrize("bad", BAD, ids=repr)
def test_anything_else_is_a_field_error_naming_the_parameter(zs: Scheduler, bad: Any) -> None:
    with pytest.raises(FieldError, match=r"^notification_id must be a whole number; got ") as caught:
        zs.status(bad)
    assert caught.value.field == "notification_id"
    for call in (zs.cancel, lambda i: zs.reschedule(i, delay=1)):
        with pytest.raises(FieldError) as caught:
            call(bad)
        assert caught.value.field == "notification_id"
    with pytest.raises(FieldError) as caught:
        zs.run(requeue_dead(zs.core, [1, bad]))
    assert caught.value.field == "ids[1]"


def test_the_message_quotes_what_came(zs: Scheduler) -> None:
    with pytest.raises(FieldError, match=r"^notification_id must be a whole number; got 'abc'$"):
        zs.status("abc")


async def test_async_takes_the_same_ids(azs: AsyncScheduler) -> None:
    (nid,) = (await azs.schedule(["ada"], "t", "m", delay=timedelta(hours=1))).notification_ids
    assert (await azs.status(str(nid))).id == nid
    assert (await azs.reschedule(str(nid), delay=60)).id == nid
    assert (await azs.cancel(str(nid))).scheduled_status == "cancelled"
    with pytest.raises(FieldError, match="notification_id must be a whole number; got 'abc'"):
        await azs.status("abc")
