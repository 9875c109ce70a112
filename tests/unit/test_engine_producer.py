"""The producer operations driven by hand with canned replies, no Redis: the steps each yields (script,
keys, arguments) and what each makes of the script's answer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from zsched import Core, Keyspace
from zsched.engine import Command, Op, Partition, Script, requeue_dead
from zsched.errors import (
    FieldError,
    IdempotencyConflictError,
    NotFoundError,
    NotPendingError,
    PastScheduleError,
    ValidationError,
)
from zsched.models import Notification, ScheduleResult, ms_to_datetime

NOW = 1_700_000_000_000
STATE = b'{"status":"cancelled","recipient":"alice","scheduled_at":1700000060000,"created_at":1700000000000}'
PAYLOAD = b'{"title":"t","message":"m"}'


def finish(op: Op[Any], replies: list[Any]) -> Any:
    """Send the last batch of replies; the operation's result."""
    with pytest.raises(StopIteration) as done:
        op.send(replies)
    return done.value.value


def core(partitions: int = 1) -> Core:
    return Core(Keyspace("t", partitions), clock=lambda: NOW)


def read(p: Partition, partitions: int, *ids: int) -> Script:
    """The step reading back the state and payload of ``ids``, also of recipients still pending in a call."""
    return Script(
        "read",
        [p.state, p.notifications, p.calls, p.call_recipients, p.call_starts, p.by_recipient],
        [partitions, *ids],
    )


def test_schedule_in_one_partition_is_one_script_call() -> None:
    c = core(4)
    op = c.schedule(["alice", "alice"], "t", "m", delay=timedelta(minutes=1))
    (step,) = next(op)
    p = c.keys.for_recipient("alice")
    assert isinstance(step, Script) and step.name == "schedule"
    assert step.keys == [
        p.due,
        p.notifications,
        p.state,
        p.by_recipient,
        p.counters,
        p.sequence,
        p.ops(NOW // 10_000),  # outcomes kept in the partition's hash for this 10 s bucket
        p.sealed,  # always last: a reshard's seal refuses the call with 'moved'
    ], "one recipient, no idempotency key, no creator: none of the optional keys"
    assert step.args[:5] == [str(NOW), "", 60_000, 4, p.index]
    assert step.args[5:9] == [p.wakeup, '{"title":"t","message":"m"}', "normal", c.op_ttl_ms]
    assert len(str(step.args[9])) == 16, "the call's operation id, for retries after a lost reply"
    assert step.args[10:] == ["alice"], "no options"
    result: ScheduleResult = finish(op, [[b"created", NOW + 60_000, NOW, 100]])
    assert result.notification_ids == [100] and not result.replayed


def test_schedule_passes_the_keys_and_options_a_call_uses() -> None:
    c = core()
    p = c.keys.partitions[0]
    (step,) = next(c.schedule(["a", "b"], "t", "m", delay=60, priority="high"))
    assert isinstance(step, Script)
    assert step.keys[0] == p.due_for("high") and step.keys[7:] == [*p.call_keys, p.sealed]
    assert step.args[7] == "high" and step.args[10:] == ["a b"], "the recipients in one argument"
    (step,) = next(c.schedule(["a"], "t", "m", delay=60, idempotency_key="k", created_by="billing"))
    assert isinstance(step, Script)
    assert step.keys[7:] == [p.idempotency("k"), p.by_creator, p.pending_by_creator, p.sealed]
    options = step.args[11:]
    assert options[:2] == ["idem_ttl_ms", c.idempotency_ttl_ms] and options[2] == "fingerprint"
    assert options[4:] == ["created_by", "billing", "max_pending", c.max_pending_per_creator, "others", 0]
    ids = {s.args[9] for s in (next(c.schedule(["a"], "t", "m", delay=60))[0] for _ in range(3))}
    assert len(ids) == 3, "every step gets its own operation id"


def test_schedule_across_partitions_stages_every_part_then_commits_each() -> None:
    c = core(4)
    people = ["alice", "bob", "carol", "dave", "erin", "alice"]
    op = c.schedule(people, "t", "m", delay=timedelta(minutes=1))
    stages = next(op)
    assert all(isinstance(s, Script) and s.name == "stage_schedule" for s in stages)
    seen: list[str] = []
    replies = []
    for step in stages:
        assert isinstance(step, Script)
        index, members = step.args[4], str(step.args[15]).split(" ")
        p = c.keys.partitions[int(index)]
        assert step.keys[:2] == [p.sequence, p.idempotency("")] and step.keys[2].startswith(f"{p.tag}:staged:c:")
        assert all(c.keys.for_recipient(m) is p for m in members)
        assert step.args[:4] == [str(NOW), "", 60_000, 4]
        assert step.args[5:8] == [0, "", c.stage_ttl_ms] and step.args[13] == c.op_ttl_ms
        assert step.keys[4] == p.ops(NOW // 10_000) and len(str(step.args[14])) == 16
        seen += members
        replies.append([b"staged", NOW + 60_000, NOW, 0, *(100 + people.index(m) for m in members)])
    assert sorted(seen) == ["alice", "bob", "carol", "dave", "erin"], "each distinct recipient once"
    assert len({s.keys[2].rpartition(":")[2] for s in stages if isinstance(s, Script)}) == 1, "one call name"
    commits = op.send(replies)
    assert [s.name for s in commits if isinstance(s, Script)] == ["commit_schedule"] * len(stages)
    assert [s.keys[8] for s in commits if isinstance(s, Script)] == [s.keys[2] for s in stages if isinstance(s, Script)]
    for commit in commits:
        assert isinstance(commit, Script) and commit.args[2] == c.op_ttl_ms and len(str(commit.args[3])) == 16
        p = c.keys.partitions[int(commit.keys[0].split("{p")[1].split("}")[0])]
        assert commit.keys[0] == p.due and commit.keys[9] == p.ops(NOW // 10_000)
        assert commit.keys[10:] == [*p.call_keys, p.sealed]
    result: ScheduleResult = finish(op, [[b"created", r[1], NOW, *r[4:]] for r in replies])
    assert result.notification_ids == [100, 101, 102, 103, 104]
    assert result.count == 5
    assert result.scheduled_at == ms_to_datetime(NOW + 60_000)
    assert not result.replayed


def test_a_refused_part_commits_nothing_and_deletes_the_staged_parts() -> None:
    c = core(4)
    op = c.schedule(["alice", "bob", "carol", "dave"], "t", "m", delay=60, idempotency_key="k")
    stages = [s for s in next(op) if isinstance(s, Script)]
    assert all(s.keys[2].endswith(":staged:k:k") for s in stages), "a keyed call's parts are named by the key"
    replies: list[Any] = [[b"staged", NOW + 60_000, NOW, 0, 100 + n] for n in range(len(stages) - 1)]
    cleanup = op.send([*replies, [b"conflict"]])
    assert cleanup == [Command(("DEL", s.keys[2])) for s in stages[:-1]]
    with pytest.raises(IdempotencyConflictError):
        op.send([1] * len(cleanup))


def test_schedule_with_an_idempotency_key_remembers_and_replays() -> None:
    c = core()
    op = c.schedule(["alice"], "t", "m", delay=5, idempotency_key="k1")
    (step,) = next(op)
    assert isinstance(step, Script)
    assert step.keys[7] == c.keys.partitions[0].idempotency("k1")
    assert step.args[11:13] == ["idem_ttl_ms", c.idempotency_ttl_ms] and len(str(step.args[14])) == 64
    result: ScheduleResult = finish(op, [[b"replayed", NOW - 1000, NOW, 7]])
    assert result.replayed and result.notification_ids == [7]


def test_the_same_request_has_the_same_fingerprint_and_another_does_not() -> None:
    def fingerprint(message: str) -> object:
        (step,) = next(core().schedule(["alice"], "t", message, delay=5, idempotency_key="k"))
        assert isinstance(step, Script)
        return step.args[14]

    assert fingerprint("m") == fingerprint("m") != fingerprint("other")


def test_schedule_conflict_raises_with_the_key() -> None:
    op = core().schedule(["alice"], "t", "m", delay=5, idempotency_key="k1")
    next(op)
    with pytest.raises(IdempotencyConflictError) as caught:
        op.send([[b"conflict"]])
    assert caught.value.key == "k1"


def test_schedule_in_the_past_by_the_server_clock_raises_with_how_long_ago() -> None:
    op = core().schedule(["alice"], "t", "m", delay=0)
    next(op)
    with pytest.raises(PastScheduleError) as caught:
        op.send([[b"past", NOW - 3 * 3600_000, NOW]])
    assert caught.value.field == "scheduled_at"
    assert "3 hours ago" in str(caught.value) and ms_to_datetime(NOW - 3 * 3600_000).isoformat() in str(caught.value)


def test_schedule_validates_before_any_step() -> None:
    with pytest.raises(ValidationError):
        next(core().schedule([], "t", "m", delay=5))


def test_cancel_then_reads_the_notification_back() -> None:
    c = core(2)
    op = c.cancel(11)
    (step,) = next(op)
    p = c.keys.for_id(11)
    assert isinstance(step, Script) and step.keys[-2].startswith(f"{p.tag}:op:")
    assert step == Script(
        "cancel",
        [
            p.due,
            p.state,
            p.cancelled,
            p.counters,
            p.pending_by_creator,
            *p.other_dues,
            *p.call_keys[:4],
            p.by_recipient,
            step.keys[-2],
            p.moving,  # what a reshard is moving is refused for that moment
        ],
        [str(NOW), c.retention.cancelled_ms, 11, c.op_ttl_ms, 2],
    )
    reads = op.send([[b"cancelled", NOW]])
    assert reads == [read(p, 2, 11)]
    n: Notification = finish(op, [[STATE, PAYLOAD]])
    assert n.id == 11 and n.scheduled_status == "cancelled" and n.recipient == "alice"


@pytest.mark.parametrize(
    ("reply", "error"),
    [([b"missing"], NotFoundError), ([b"not_pending", b"sent"], NotPendingError), ([b"weird"], RuntimeError)],
)
def test_cancel_refusals_raise_their_exception(reply: list[Any], error: type[Exception]) -> None:
    op = core().cancel(3)
    next(op)
    with pytest.raises(error) as caught:
        looked = op.send([reply])  # a miss looks for a reshard's forward and reads the layout again first
        assert [s.args[0] for s in looked if isinstance(s, Command)] == ["HGET", "HGETALL"]
        op.send([None, {b"partitions": b"1"}])
    if isinstance(caught.value, NotPendingError):
        assert caught.value.status == "sent" and caught.value.notification_id == 3
        assert "cannot cancel notification 3: it is sent" in str(caught.value)


def test_reschedule_passes_the_new_time_and_reads_back() -> None:
    c = core()
    at = ms_to_datetime(NOW + 3_600_000)
    op = c.reschedule(5, at=at)
    (step,) = next(op)
    p = c.keys.partitions[0]
    assert isinstance(step, Script) and step.keys[-2].startswith(f"{p.tag}:op:")
    assert step == Script(
        "reschedule",
        [p.due, p.state, *p.other_dues, *p.call_keys[:4], p.by_recipient, step.keys[-2], p.moving],
        [str(NOW), 5, NOW + 3_600_000, 0, p.wakeup, c.op_ttl_ms, 1],
    )
    reads = op.send([[b"rescheduled", NOW + 3_600_000, NOW]])
    assert reads == [read(p, 1, 5)]
    n: Notification = finish(op, [[STATE, PAYLOAD]])
    assert n.id == 5


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ([b"past", NOW - 10, NOW], PastScheduleError),
        ([b"missing"], NotFoundError),
        ([b"not_pending", b"processing"], NotPendingError),
    ],
)
def test_reschedule_refusals_raise_their_exception(reply: list[Any], error: type[Exception]) -> None:
    op = core().reschedule(5, delay=1)
    next(op)
    with pytest.raises(error):
        op.send([reply])
        op.send([None, {b"partitions": b"1"}])  # a miss: no forward, the same layout


def test_requeue_dead_groups_ids_by_partition_and_collects_what_came_back() -> None:
    c = core(2)
    op = requeue_dead(c, [1, 2, 3, 4])
    steps = next(op)
    assert [(s.name, s.args[4:]) for s in steps if isinstance(s, Script)] == [
        ("requeue_dead", [1, 3]),
        ("requeue_dead", [2, 4]),
    ]
    assert finish(op, [[NOW, 1], [NOW, 2, 4]]) == [1, 2, 4]


def test_requeue_everything_asks_each_partition_again_while_batches_come_back_full() -> None:
    c = core(2)
    op = requeue_dead(c, everything=True, batch=2)
    (first,) = next(op)
    assert isinstance(first, Script) and first.keys[0] == c.keys.partitions[0].due and first.args[3:] == [c.op_ttl_ms]
    (again,) = op.send([[NOW, 10, 12]])
    assert isinstance(again, Script) and again.keys[0] == c.keys.partitions[0].due
    (second,) = op.send([[NOW, 14]])
    assert isinstance(second, Script) and second.keys[0] == c.keys.partitions[1].due
    assert finish(op, [[NOW]]) == [10, 12, 14]


@pytest.mark.parametrize("kwargs", [{}, {"ids": [1], "everything": True}])
def test_requeue_dead_needs_ids_or_everything(kwargs: dict[str, Any]) -> None:
    with pytest.raises(FieldError):
        next(requeue_dead(core(), **kwargs))


def test_a_part_sealed_between_stage_and_commit_is_sent_again_to_the_new_generation() -> None:
    c = core(2)
    people = ["alice", "bob", "carol", "dave"]
    op = c.schedule(people, "t", "m", delay=60)
    stages = [s for s in next(op) if isinstance(s, Script)]
    assert len(stages) == 2, "the recipients span both partitions"
    members = [str(s.args[15]).split(" ") for s in stages]
    staged = [
        [b"staged", NOW + 60_000, NOW, 0, *range(10 * (k + 1), 10 * (k + 1) + len(m))] for k, m in enumerate(members)
    ]
    commits = op.send(staged)
    assert all(isinstance(s, Script) and s.keys[15].endswith(":sealed") for s in commits)
    (layout,) = op.send([[b"created", NOW + 60_000, NOW, *staged[0][4:]], [b"moved", 1]])
    assert layout == Command(("HGETALL", c.keys.layout)), "the layout is read again"
    steps = op.send([{b"partitions": b"2", b"generation": b"1", b"partitions:1": b"3", b"id_base:1": b"300"}])
    resend = [s for s in steps if isinstance(s, Script)]
    assert all("{g1p" in s.keys[0] for s in resend), "to the new generation's partitions"
    if len(resend) == 1:  # the sealed part's recipients share one new partition
        assert resend[0].name == "schedule" and str(resend[0].args[10]).split(" ") == members[1]
        result: ScheduleResult = finish(op, [[b"created", NOW + 60_000, NOW, *range(300, 300 + len(members[1]))]])
    else:
        again = [str(s.args[15]).split(" ") for s in resend]
        assert sorted(m for part in again for m in part) == sorted(members[1]), "only the sealed part's recipients"
        new_staged = [
            [b"staged", NOW + 60_000, NOW, 0, *range(300 + 10 * k, 300 + 10 * k + len(m))] for k, m in enumerate(again)
        ]
        op.send(new_staged)
        result = finish(op, [[b"created", NOW + 60_000, NOW, *r[4:]] for r in new_staged])
    ids = dict(zip(people, result.notification_ids, strict=True))
    assert [ids[m] for m in members[0]] == list(staged[0][4:]), "the committed part keeps its ids"
    assert all(ids[m] >= 300 for m in members[1]), "the sealed part's recipients got new-generation ids"
    assert result.count == 4


def test_a_call_meeting_a_seal_at_its_stage_drops_its_staged_parts_and_goes_whole_to_the_new_generation() -> None:
    c = core(2)
    op = c.schedule(["alice"], "t", "m", delay=60)
    (step,) = next(op)
    assert isinstance(step, Script) and step.keys[-1] == c.keys.partitions[c.keys.for_recipient("alice").index].sealed
    (layout,) = op.send([[b"moved", 1]])
    assert layout == Command(("HGETALL", c.keys.layout))
    (again,) = op.send([{b"partitions": b"2", b"generation": b"1", b"partitions:1": b"3", b"id_base:1": b"300"}])
    assert isinstance(again, Script) and again.name == "schedule" and "{g1p" in again.keys[0]
    result: ScheduleResult = finish(op, [[b"created", NOW + 60_000, NOW, 301]])
    assert result.notification_ids == [301]
    c = core(2)  # the generation before the reshard
    op = c.schedule(["alice", "bob", "carol", "dave"], "t", "m", delay=60)
    stages = [s for s in next(op) if isinstance(s, Script)]
    assert len(stages) == 2
    cleanup = op.send([[b"staged", NOW + 60_000, NOW, 0, 400, 402], [b"moved", 1]])
    assert cleanup == [Command(("DEL", stages[0].keys[2]))], "the part staged before the seal is dropped"
    (layout,) = op.send([1])
    assert layout == Command(("HGETALL", c.keys.layout)), "then the whole call goes to the new generation"
