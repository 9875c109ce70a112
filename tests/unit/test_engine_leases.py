"""The lease operations driven by hand with canned replies, no Redis: the steps each yields and how each
script's reply is read."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from zsched import Core, Keyspace, RetryPolicy
from zsched.engine import Claimed, Op, Script
from zsched.engine.keys import Partition
from zsched.engine.leases import InboxPlan
from zsched.models import Notification, Payload, State, ms_to_datetime

NOW = 1_700_000_000_000


def finish(op: Op[Any], replies: list[Any]) -> Any:
    """Send the last batch of replies; the operation's result."""
    with pytest.raises(StopIteration) as done:
        op.send(replies)
    return done.value.value


def core() -> Core:
    return Core(Keyspace("t", 2), retry=RetryPolicy(delays_ms=(1000, 2000)), clock=lambda: NOW)


def state(recipient: str, attempts: int) -> bytes:
    return (
        f'{{"status":"processing","recipient":"{recipient}","scheduled_at":{NOW},"created_at":{NOW},'
        f'"attempts":{attempts},"lease_until":{NOW + 30_000}}}'
    ).encode()


def notification(notification_id: int, attempts: int) -> Notification:
    return Notification(
        id=notification_id,
        recipient="alice",
        title="t",
        message="m",
        scheduled_at=ms_to_datetime(NOW),
        scheduled_status="processing",
        created_at=ms_to_datetime(NOW),
        attempts=attempts,
    )


def op_key(step: object, p: Partition) -> str:
    """The operation key a state-changing step ends its keys with: in the partition's hash tag, fresh per step."""
    assert isinstance(step, Script) and step.keys[-1].startswith(f"{p.tag}:op:")
    return step.keys[-1]


def test_each_state_changing_step_carries_its_own_operation_key() -> None:
    c = core()
    p = c.keys.partitions[0]
    keys = {op_key(next(c.claim(p, 10, 1000))[0], p) for _ in range(3)}
    assert len(keys) == 3 and all(len(k.rpartition(":")[2]) == 16 for k in keys)


def test_claim_reads_time_wait_and_each_claimed_notification() -> None:
    c = core()
    p = c.keys.partitions[1]
    op = c.claim(p, 10, 30_000)
    (step,) = next(op)
    assert step == Script(
        "claim",
        [
            p.due,
            p.processing,
            p.notifications,
            p.state,
            p.counters,
            *p.other_dues,
            *p.call_keys[:4],
            p.by_recipient,
            p.sent,
            p.pending_by_creator,
            f"{p.tag}:inbox:",
            p.expired,
            p.paused,
            p.parked,
            p.recipient_counts(""),
            p.throttled,
            p.websocket_opt_outs,
            op_key(step, p),
        ],
        [
            *[str(NOW), 10, 30_000, c.op_ttl_ms, 2, "", c.retention.sent_ms, "", "", f"{p.tag}:user:"],
            *[c.retention.cancelled_ms, 1, "PUBLISH", ""],
        ],
    )
    claimed: Claimed = finish(
        op,
        [
            [
                NOW,
                1500,
                0,
                3,
                state("alice", 1),
                b'{"title":"a","message":"m"}',
                5,
                state("bob", 2),
                b'{"title":"","message":"m"}',
            ]
        ],
    )
    assert claimed.now_ms == NOW and claimed.wait_ms == 1.5
    assert [(n.id, n.recipient, n.attempts, n.title) for n in claimed.notifications] == [
        (3, "alice", 1, "a"),
        (5, "bob", 2, ""),
    ]


def test_claim_with_nothing_pending_waits_forever() -> None:
    op = core().claim(core().keys.partitions[0], 10, 1000)
    next(op)
    claimed: Claimed = finish(op, [[NOW, -1, 0]])
    assert claimed.wait_ms == -1 and claimed.notifications == [] and claimed.sent == []


def test_claim_with_an_inbox_plan_delivers_there_and_reads_what_it_sent() -> None:
    c = core()
    p = c.keys.partitions[0]
    op = c.claim(p, 10, 30_000, InboxPlan(maxlen=50, keep_ms=60_000, unnamed=False))
    (step,) = next(op)
    assert isinstance(step, Script) and step.args[5:9] == ["named", c.retention.sent_ms, 50, 60_000]
    sent_state = state("alice", 1).replace(b'"processing"', b'"sent"')
    payload = b'{"title":"a","message":"m","channels":["websocket"]}'
    claimed: Claimed = finish(
        op,
        [
            [
                NOW,
                -1,
                2,
                2,
                sent_state,
                payload,
                4,
                b"{not json",
                payload,
                6,
                state("bob", 1),
                b'{"title":"b","message":"m"}',
            ]
        ],
    )
    assert [(n.id, n.scheduled_status) for n in claimed.sent_notifications()] == [(2, "sent")]  # 4 left out
    assert [i for i, _, _ in claimed.sent] == [2, 4]
    assert [(n.id, n.recipient) for n in claimed.notifications] == [(6, "bob")]


def test_ack_passes_the_ids_and_returns_time_and_count() -> None:
    c = core()
    p = c.keys.partitions[0]
    op = c.ack(p, [2, 4])
    (step,) = next(op)
    assert step == Script(
        "ack",
        [p.due, p.processing, p.state, p.sent, p.counters, p.pending_by_creator, *p.other_dues, op_key(step, p)],
        [str(NOW), c.retention.sent_ms, c.op_ttl_ms, 2, 4],
    )
    assert finish(op, [[NOW, 2]]) == (NOW, 2)


def test_fail_passes_the_policy_delay_or_minus_one_when_no_retry_is_left() -> None:
    c = core()
    p = c.keys.partitions[0]
    op = c.fail(p, [(notification(2, 1), "boom"), (notification(4, 3), "x" * 3000)])
    (step,) = next(op)
    assert isinstance(step, Script) and step.name == "retry"
    assert step.keys == [
        *[p.due, p.processing, p.state, p.failed, p.counters, p.pending_by_creator, *p.other_dues],
        *[p.notifications, p.by_recipient, p.by_creator, p.payload_refs],
        op_key(step, p),
    ]
    assert step.args[:5] == [str(NOW), c.retention.failed_ms, p.wakeup, c.op_ttl_ms, c.retention.max_dead]
    assert step.args[5:10] == [2, 1, 1000, "boom", ""]
    assert step.args[10:13] == [4, 3, -1] and len(str(step.args[13])) == 2000, "error text is capped"
    assert finish(op, [[NOW, 1, 1, 0]]) == (1, 1)


def test_fail_uses_the_delays_the_caller_drew() -> None:
    c = core()
    op = c.fail(c.keys.partitions[0], [(notification(2, 1), "boom")], {2: 1234})
    (step,) = next(op)
    assert isinstance(step, Script) and step.args[7] == 1234


def test_reap_passes_max_attempts_and_returns_requeued_and_failed() -> None:
    c = core()
    p = c.keys.partitions[1]
    op = c.reap(p, limit=50)
    (step,) = next(op)
    assert step == Script(
        "reap",
        [p.due, p.processing, p.state, p.failed, p.counters, p.pending_by_creator, *p.other_dues, *p.dead_keys],
        [str(NOW), 50, 3, c.retention.failed_ms, p.wakeup, "", c.retention.max_dead],
    )
    assert finish(op, [[NOW, 4, 1, 0]]) == (4, 1)


def test_purge_returns_how_many() -> None:
    c = core()
    p = c.keys.partitions[0]
    op = c.purge(p, limit=20)
    (step,) = next(op)
    assert step == Script(
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
        [str(NOW), 20],
    )
    assert finish(op, [[NOW, 7]]) == 7


def test_a_claim_ahead_goes_in_the_same_round_trip_under_its_own_operation_key() -> None:
    c = core()
    p = c.keys.partitions[0]
    plan = InboxPlan(maxlen=50, keep_ms=60_000)
    op = c.claim(p, 10, 30_000, plan, ahead=1)
    steps = next(op)
    assert [s.args[11] for s in steps if isinstance(s, Script)] == [1, 0]  # the one ahead claims nothing for Python
    assert len({op_key(s, p) for s in steps}) == 2
    payload = b'{"title":"a","message":"m"}'
    sent_state = state("alice", 1).replace(b'"processing"', b'"sent"')
    claimed: Claimed = finish(op, [[NOW, 0, 1, 2, sent_state, payload], [NOW + 1, 2500, 1, 4, sent_state, payload]])
    assert [i for i, _, _ in claimed.sent] == [2, 4] and claimed.wait_ms == 2.5, "the wait after the last"
    assert len(next(c.claim(p, 10, 30_000, None, ahead=1))) == 1, "nothing goes ahead without an inbox plan"


def test_what_a_claim_sent_reads_as_each_record_does() -> None:
    """Recipients of one call share all but their recipient, and are copies of one decoded notification; any
    record that differs in anything else is decoded on its own."""
    call = b'{"title":"a","message":"m","data":{"k":[1]}}'
    other = b'{"title":"b","message":"n","type":"reminder"}'

    def sent_state(recipient: str, **more: object) -> bytes:
        fields = {"status": "sent", "recipient": recipient, "scheduled_at": NOW, "created_at": NOW - 5, "attempts": 1}
        return msgspec.json.encode({**fields, "sent_at": NOW + 3, "call": 7, **more})

    records = [
        (7, sent_state("ann"), call),
        (9, sent_state("bob"), call),
        (11, sent_state("cy", attempts=2, last_error="boom"), call),
        (13, sent_state("dee"), other),
        (15, b"{not json", call),
    ]
    got = Claimed(NOW, -1, [], [], records).sent_notifications()
    expected = [
        Notification.from_stored(i, msgspec.json.decode(s, type=State), msgspec.json.decode(p, type=Payload))
        for i, s, p in records[:4]
    ]
    assert got == expected
