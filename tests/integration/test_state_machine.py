"""The state machine, model-checked: hypothesis drives the real Lua scripts on a real server with random
schedule / claim / ack / fail / skip / cancel / reschedule / reap / purge / clock steps, and compares every
step with a plain Python model of the seed's machine:

    pending -> processing -> sent | (retry) pending | failed;   processing -(lease expired)-> pending | failed;
    pending -> cancelled;   a late ack of a requeued one still marks it sent (it was delivered);
    pending -(claimed at or after expires_at, or on_late skip and too late)-> expired;
    pending -(a newer one scheduled with its recipient and collapse key)-> collapsed;
    pending -(claimed over its recipient's limit, which drops: one per recipient per window)-> throttled;
    processing -(its recipient opted out of every channel it names, for its type)-> skipped; opted out of some:
    still processing (the worker sends the rest);
    a whole call's pending ones -> cancelled, or to a new due time (cancel_batch, reschedule_batch);
    new content for a pending one or a whole call's (edit, edit_batch): only pending ones change.

``ZSCHED_STATE_MACHINE_EXAMPLES`` raises the number of examples (``make chaos`` runs it longer), and
``ZSCHED_STATE_MACHINE_REPORT`` names a JSON file to write how many examples and steps of each kind ran.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import msgspec
import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, rule, run_state_machine_as_test

from tests.conftest import ManualClock
from zsched import Core, Keyspace, NotFoundError, NotPendingError, Retention, RetryPolicy, Scheduler
from zsched.engine.replies import ReadReply
from zsched.engine.shaping import RecipientLimit
from zsched.engine.views import read_records
from zsched.models import Notification, ms_to_datetime

EXAMPLES = int(os.environ.get("ZSCHED_STATE_MACHINE_EXAMPLES", "30"))
STEPS = int(os.environ.get("ZSCHED_STATE_MACHINE_STEPS", "30"))
POLICY = RetryPolicy(delays_ms=(50, 100))  # three attempts
RETENTION = Retention(sent_ms=4000, cancelled_ms=3000, failed_ms=5000)
LEASE_MS = 1000
DROP = RecipientLimit("system", most=1, window_ms=60_000, over="drop")  # what a limited claim applies
PEOPLE = ("ann", "bo", "cy", "dee")
TERMINAL = {"sent", "cancelled", "failed", "expired", "collapsed", "throttled", "skipped"}
ZSET_OF = {status: "due" if status == "pending" else status for status in ("pending", "processing", *TERMINAL)}


@dataclass
class Record:
    """The model's view of one notification."""

    recipient: str
    status: str = "pending"
    attempts: int = 0
    score: int = 0  # due time, lease deadline or purge time, by status
    call: int | None = None  # the many-recipient call it came in (its payload is stored once, under this id)
    scheduled_at: int = 0  # its due time: set by schedule, reschedule and a retry (a reap leaves it)
    expires_at: int | None = None
    late_ms: int | None = None  # on_late skip: claimed more than this after scheduled_at, it expires
    collapse_key: str | None = None
    title: str = "t"  # edits change it

    def expired(self, now: int) -> bool:
        """Whether a claim at ``now`` expires it instead of handing it out."""
        return (self.expires_at is not None and now >= self.expires_at) or (
            self.late_ms is not None and now > self.scheduled_at + self.late_ms
        )


@dataclass(frozen=True)
class Claim:
    """What a worker holds after a claim: the notification as it was handed out (its attempt number)."""

    notification: Notification


def machine(redis_url: str, tally: Counter[str]) -> type[RuleBasedStateMachine]:
    """A state machine class bound to one server; each example gets its own key prefix."""

    class SchedulerMachine(RuleBasedStateMachine):
        claims = Bundle("claims")

        def __init__(self) -> None:
            super().__init__()
            self.clock = ManualClock(1_767_225_600_000)
            self.keys = Keyspace(f"sm-{uuid.uuid4().hex[:10]}")
            self.core = Core(self.keys, retry=POLICY, retention=RETENTION, clock=self.clock)
            self.zs = Scheduler(redis.Redis.from_url(redis_url), core=self.core)
            self.p = self.keys.partitions[0]
            self.model: dict[int, Record] = {}
            self.purged: set[int] = set()
            self.seen_terminal: dict[int, str] = {}
            self.collapse: dict[str, int] = {}  # "<recipient> <key>" -> newest id scheduled with them
            self.batches: list[tuple[str, list[int]]] = []  # each schedule call's batch id and ids
            self.handed: Counter[tuple[str, int]] = Counter()  # (recipient, window) -> handed out by limited claims

        def teardown(self) -> None:
            tally["examples"] += 1
            keys = list(self.zs.redis.scan_iter(match=f"{self.keys.prefix}:*", count=1000))
            if keys:
                self.zs.redis.unlink(*keys)
            self.zs.redis.close()

        def now(self) -> int:
            return self.clock.ms

        # -- steps ---------------------------------------------------------------------------------

        @rule(
            people=st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=3, unique=True),
            delay_ms=st.sampled_from([0, 0, 1, 50, 500, 1000, 3000]),
            expire_after_ms=st.sampled_from([None, None, 1, 500, 2000]),
            late_ms=st.sampled_from([None, None, 0, 1000]),
            key=st.sampled_from([None, None, "k"]),
        )
        def schedule(
            self, people: list[str], delay_ms: int, expire_after_ms: int | None, late_ms: int | None, key: str | None
        ) -> None:
            tally["schedule"] += 1
            due = self.now() + delay_ms
            until = None if expire_after_ms is None else due + expire_after_ms
            result = self.zs.schedule(
                people,
                "t",
                "m",
                delay=timedelta(milliseconds=delay_ms),
                expires_at=None if until is None else ms_to_datetime(until),
                on_late="send" if late_ms is None else "skip",
                late_after=None if late_ms is None else late_ms / 1000,
                collapse_key=key,
            )
            assert len(result.notification_ids) == len(people)
            self.batches.append((result.batch_id, result.notification_ids))
            call = result.notification_ids[0] if len(people) > 1 else None
            for nid, person in zip(result.notification_ids, people, strict=True):
                assert nid not in self.model and nid not in self.purged
                self.model[nid] = Record(
                    person, score=due, call=call, scheduled_at=due, expires_at=until, late_ms=late_ms
                )
                if key is not None:
                    tally["collapse key"] += 1
                    older = self.model.get(self.collapse.get(f"{person} {key}", -1))
                    if older is not None and older.status == "pending":
                        older.status, older.score = "collapsed", self.now() + RETENTION.cancelled_ms
                        tally["collapsed"] += 1
                    self.collapse[f"{person} {key}"] = nid
                    self.model[nid].collapse_key = key

        @rule(target=claims, limit=st.integers(1, 4), limited=st.sampled_from([False, False, True]))
        def claim(self, limit: int, limited: bool) -> object:
            tally["claim"] += 1
            due = {nid: r.score for nid, r in self.model.items() if r.status == "pending" and r.score <= self.now()}
            expired_before = set(self.zs.redis.zrange(self.p.expired, 0, -1))
            throttled_before = set(self.zs.redis.zrange(self.p.throttled, 0, -1))
            limits = [DROP] if limited else []
            got = self.zs.run(self.core.claim(self.p, limit, LEASE_MS, limits=limits)).notifications
            ids = [n.id for n in got]
            expired = [int(m) for m in self.zs.redis.zrange(self.p.expired, 0, -1) if m not in expired_before]
            throttled = [int(m) for m in self.zs.redis.zrange(self.p.throttled, 0, -1) if m not in throttled_before]
            assert limited or not throttled
            window = self.now() // DROP.window_ms
            for n in got if limited else []:  # at most one per recipient per window, over every limited claim
                self.handed[n.recipient, window] += 1
                assert self.handed[n.recipient, window] == 1, (n.recipient, window)
            for nid in throttled:  # over the limit: its recipient had one handed out in this window already
                r = self.model[nid]
                assert self.handed[r.recipient, window] >= 1 and not r.expired(self.now()), (nid, r)
                r.status, r.score = "throttled", self.now() + RETENTION.cancelled_ms
                tally["throttled"] += 1
            taken = ids + expired + throttled  # expired and throttled ones count against the limit too
            assert len(taken) == min(limit, len(due)) and set(taken) <= due.keys(), (ids, expired, due)
            if taken:  # the earliest are taken first
                assert max(due[i] for i in taken) <= min((s for i, s in due.items() if i not in taken), default=2**62)
            for nid in expired:
                r = self.model[nid]
                assert r.expired(self.now()), (nid, r, self.now())
                r.status, r.score = "expired", self.now() + RETENTION.cancelled_ms
                tally["expired"] += 1
            for n in got:
                r = self.model[n.id]
                assert not r.expired(self.now()), (n.id, r, self.now())
                r.status, r.attempts, r.score = "processing", r.attempts + 1, self.now() + LEASE_MS
                assert n.attempts == r.attempts
            return multiple(*(Claim(n) for n in got))

        @rule(held=claims, other=claims, together=st.booleans())
        def ack(self, held: Claim, other: Claim, together: bool) -> None:
            tally["ack"] += 1
            ids = list(dict.fromkeys(c.notification.id for c in ([held, other] if together else [held])))
            expected = 0
            for nid in ids:
                r = self.model.get(nid)
                if r is not None and r.status in ("processing", "pending"):
                    r.status, r.score = "sent", self.now() + RETENTION.sent_ms
                    expected += 1
            assert self.zs.run(self.core.ack(self.p, ids))[1] == expected

        @rule(held=claims)
        def fail(self, held: Claim) -> None:
            tally["fail"] += 1
            n = held.notification
            r = self.model.get(n.id)
            retried = failed = 0
            # only the worker that holds the current lease may fail it: a worker whose lease expired and
            # whose notification was claimed again must not requeue it under the new holder's feet
            if r is not None and r.status == "processing" and r.attempts == n.attempts:
                delay = POLICY.delay_ms(n.attempts)
                if delay is None:
                    r.status, r.score = "failed", self.now() + RETENTION.failed_ms
                    failed = 1
                else:
                    r.status, r.score = "pending", self.now() + delay
                    r.scheduled_at = r.score
                    retried = 1
            assert self.zs.run(self.core.fail(self.p, [(n, "boom")])) == (retried, failed)

        @rule(held=claims, every_channel=st.booleans())
        def skip(self, held: Claim, every_channel: bool) -> None:
            tally["skip"] += 1
            n = held.notification
            r = self.model.get(n.id)
            skipped = 0
            # as a failure: only under the lease of the claim it names; opted out of some channels, it stays held
            if r is not None and r.status == "processing" and r.attempts == n.attempts and every_channel:
                r.status, r.score = "skipped", self.now() + RETENTION.cancelled_ms
                skipped = 1
                tally["skipped"] += 1
            why = f"{n.recipient} opted out of sms for type 'system'" if every_channel else None
            assert self.zs.run(self.core.skip(self.p, [(n, ["sms"], why)])) == skipped

        @rule(data=st.data())
        def cancel(self, data: st.DataObject) -> None:
            tally["cancel"] += 1
            nid = self._pick(data)
            r = self.model.get(nid)
            if r is None:
                with pytest.raises(NotFoundError):
                    self.zs.cancel(nid)
            elif r.status != "pending":
                with pytest.raises(NotPendingError):
                    self.zs.cancel(nid)
            else:
                assert self.zs.cancel(nid).scheduled_status == "cancelled"
                r.status, r.score = "cancelled", self.now() + RETENTION.cancelled_ms

        @rule(data=st.data(), delay_ms=st.integers(0, 3000))
        def reschedule(self, data: st.DataObject, delay_ms: int) -> None:
            tally["reschedule"] += 1
            nid = self._pick(data)
            r = self.model.get(nid)
            if r is None:
                with pytest.raises(NotFoundError):
                    self.zs.reschedule(nid, delay=timedelta(milliseconds=delay_ms))
            elif r.status != "pending":
                with pytest.raises(NotPendingError):
                    self.zs.reschedule(nid, delay=timedelta(milliseconds=delay_ms))
            else:
                self.zs.reschedule(nid, delay=timedelta(milliseconds=delay_ms))
                r.score = r.scheduled_at = self.now() + delay_ms

        @rule(data=st.data())
        def cancel_batch(self, data: st.DataObject) -> None:
            if not self.batches:
                return
            tally["cancel_batch"] += 1
            batch, ids = data.draw(st.sampled_from(self.batches))
            expected = [0, 0, 0]  # changed, not pending, missing
            for nid in ids:
                r = self.model.get(nid)
                if r is None:
                    expected[2] += 1
                elif r.status != "pending":
                    expected[1] += 1
                else:
                    r.status, r.score = "cancelled", self.now() + RETENTION.cancelled_ms
                    expected[0] += 1
            got = self.zs.cancel_batch(batch)
            assert [got.changed, got.not_pending, got.missing] == expected

        @rule(data=st.data(), delay_ms=st.integers(0, 3000))
        def reschedule_batch(self, data: st.DataObject, delay_ms: int) -> None:
            if not self.batches:
                return
            tally["reschedule_batch"] += 1
            batch, ids = data.draw(st.sampled_from(self.batches))
            expected = [0, 0, 0]  # changed, not pending, missing
            for nid in ids:
                r = self.model.get(nid)
                if r is None:
                    expected[2] += 1
                elif r.status != "pending":
                    expected[1] += 1
                else:
                    r.score = r.scheduled_at = self.now() + delay_ms
                    expected[0] += 1
            got = self.zs.reschedule_batch(batch, delay=timedelta(milliseconds=delay_ms))
            assert [got.changed, got.not_pending, got.missing] == expected

        def _holder(self, nid: int) -> int | None:
            """The payload holder a record's state names now (an edit may have given it a fresh one)."""
            raw = self.zs.redis.hget(self.p.state, nid)
            holder = msgspec.json.decode(raw).get("call") if raw else None
            return None if holder is None else int(holder)

        @rule(data=st.data(), title=st.sampled_from(["e1", "e2"]))
        def edit(self, data: st.DataObject, title: str) -> None:
            tally["edit"] += 1
            nid = self._pick(data)
            r = self.model.get(nid)
            if r is None:
                with pytest.raises(NotFoundError):
                    self.zs.edit(nid, title=title)
            elif r.status != "pending":
                with pytest.raises(NotPendingError):
                    self.zs.edit(nid, title=title)
            else:
                assert self.zs.edit(nid, title=title).title == title
                r.title = title
                if r.call is not None:  # it shared a payload: now it has one of its own, under a fresh holder
                    holder = self._holder(nid)
                    assert holder is not None and holder != r.call and holder not in self.model
                    r.call = holder

        @rule(data=st.data(), title=st.sampled_from(["b1", "b2"]))
        def edit_batch(self, data: st.DataObject, title: str) -> None:
            if not self.batches:
                return
            tally["edit_batch"] += 1
            batch, ids = data.draw(st.sampled_from(self.batches))
            expected = [0, 0, 0]  # changed, not pending (or edited alone), missing
            cid = ids[0] if len(ids) > 1 else None
            left: list[int] = []
            for nid in ids:
                r = self.model.get(nid)
                if r is None:
                    expected[2] += 1
                elif cid is None:  # a single notification: edited as edit does it
                    expected[0 if r.status == "pending" else 1] += 1
                    if r.status == "pending":
                        r.title = title
                elif r.call == cid and r.status == "pending":
                    expected[0] += 1
                    r.title = title
                else:
                    expected[1] += 1
                    if r.call == cid:
                        left.append(nid)
            got = self.zs.edit_batch(batch, title=title)
            assert [got.changed, got.not_pending, got.missing] == expected
            holders = {self._holder(nid) for nid in left}
            assert len(holders) <= 1 and not holders & {cid, None}, "those that left share one fresh holder"
            for nid in left:
                self.model[nid].call = self._holder(nid)

        @rule()
        def reap(self) -> None:
            tally["reap"] += 1
            requeued = failed = 0
            for r in self.model.values():
                if r.status == "processing" and r.score <= self.now():
                    if r.attempts >= POLICY.max_attempts:
                        r.status, r.score = "failed", self.now() + RETENTION.failed_ms
                        failed += 1
                    else:
                        r.status, r.score = "pending", self.now()
                        requeued += 1
            assert self.zs.run(self.core.reap(self.p)) == (requeued, failed)

        @rule()
        def purge(self) -> None:
            tally["purge"] += 1
            gone = [nid for nid, r in self.model.items() if r.status in TERMINAL and r.score <= self.now()]
            for nid in gone:
                r = self.model.pop(nid)
                self.purged.add(nid)
                field = f"{r.recipient} {r.collapse_key}"
                if r.collapse_key is not None and self.collapse.get(field) == nid:
                    del self.collapse[field]
            assert self.zs.run(self.core.purge(self.p)) == len(gone)

        @rule(ms=st.sampled_from([1, 50, 100, 500, 999, 1000, 2500, 5000]))
        def advance(self, ms: int) -> None:
            tally["advance"] += 1
            self.clock.advance(ms)

        def _pick(self, data: st.DataObject) -> int:
            known = sorted(self.model.keys() | self.purged)
            return data.draw(st.sampled_from(known)) if known else 999_999

        # -- invariants ----------------------------------------------------------------------------

        @invariant()
        def matches_the_model(self) -> None:
            r, p = self.zs.redis, self.p
            members: dict[str, dict[int, int]] = {}
            for status, name in ZSET_OF.items():
                if status != "pending":
                    key = getattr(p, name)
                    members[status] = {int(m): int(float(s)) for m, s in r.zrange(key, 0, -1, withscores=True)}
            # Pending: due entries, where "-<call id>" stands for every recipient still waiting in that call
            # (those from its cursor on that no cancel or reschedule took out on their own, even if that
            # record has since been purged: its index entry is gone then).
            own = {int(k): msgspec.json.decode(v) for k, v in r.hgetall(p.state).items()}
            calls = {int(k): v.split() for k, v in r.hgetall(p.calls).items()}
            people = {int(k): v.decode().split(" ") for k, v in r.hgetall(p.call_recipients).items()}
            index = {m.decode() for m in r.zrange(p.by_recipient, 0, -1)}
            members["pending"], in_calls = {}, 0
            for m, score in r.zrange(p.due, 0, -1, withscores=True):
                if int(m) >= 0:
                    members["pending"][int(m)] = int(score)
                    continue
                cid = -int(m)
                due, _, count, cursor = (int(v) for v in calls[cid][:4])
                assert due == int(score), "a call sits in due at a time other than its own"
                waiting = [
                    cid + i
                    for i in range(cursor, count)
                    if cid + i not in own and f"{people[cid][i]} {cid + i:016d}" in index
                ]
                members["pending"].update(dict.fromkeys(waiting, due))
                in_calls += len(waiting)
            assert int(r.get(p.call_pending) or 0) == in_calls, "call_pending miscounts the recipients in calls"
            assert calls.keys() == {-int(m) for m in r.zrange(p.due, 0, -1) if int(m) < 0}
            assert calls.keys() == {int(m) for m in r.zrange(p.call_starts, 0, -1)}
            everywhere = [nid for ids in members.values() for nid in ids]
            assert len(everywhere) == len(set(everywhere)), "an id sits in two status sets"
            assert set(everywhere) == self.model.keys(), "status sets and the model disagree on which ids exist"
            # Storage: a record of its own only once something happened to that recipient alone; the payload
            # once per call, kept while any of its recipients' records is.
            assert own.keys() <= self.model.keys()
            shared = Counter(rec.call for rec in self.model.values() if rec.call is not None)
            assert {int(k): int(v) for k, v in r.hgetall(p.payload_refs).items()} == shared
            singles = {nid for nid, rec in self.model.items() if rec.call is None}
            assert {int(k) for k in r.hkeys(p.notifications)} == singles | shared.keys()
            ids = sorted(self.model)
            step = read_records(p, 1, ids)
            found = ReadReply.read(self.zs.scripts[step.name](keys=step.keys, args=step.args)).records if ids else []
            assert all(body is not None for _, body in found), "a notification reads without its payload"
            for nid, (_, body) in zip(ids, found, strict=True):
                assert msgspec.json.decode(body)["title"] == self.model[nid].title, (nid, "content is not the model's")
            states = {nid: msgspec.json.decode(raw) for nid, (raw, _) in zip(ids, found, strict=True) if raw}
            assert states.keys() == self.model.keys()
            for nid, record in self.model.items():
                state = states[nid]
                assert nid in members[record.status], (nid, record, state)
                assert members[record.status][nid] == record.score, (nid, record, members[record.status][nid])
                assert (state["status"], state["attempts"]) == (record.status, record.attempts), (nid, state, record)
                assert state["attempts"] <= POLICY.max_attempts
                assert state["recipient"] == record.recipient
                if nid in self.seen_terminal:
                    assert state["status"] == self.seen_terminal[nid], "a terminal status moved"
                if state["status"] in TERMINAL:
                    self.seen_terminal[nid] = state["status"]
            assert index == {f"{rec.recipient} {nid:016d}" for nid, rec in self.model.items()}
            collapse = {k.decode(): int(v) for k, v in r.hgetall(p.collapse).items()}
            assert collapse == self.collapse, "the collapse index and the model disagree"

    return SchedulerMachine


def test_scripts_follow_the_model(redis_url: str) -> None:
    tally: Counter[str] = Counter()
    try:
        run_state_machine_as_test(
            machine(redis_url, tally),
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        report = os.environ.get("ZSCHED_STATE_MACHINE_REPORT")
        if report:
            with open(report, "wb") as out:
                out.write(msgspec.json.encode(dict(tally)))
