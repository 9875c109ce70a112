"""A record that cannot be decoded fails alone: its batch is delivered on the first attempt, the worker lives on.

Before, one corrupt record raised in the worker (or failed the whole claim script), and the batch it was
claimed with was reaped with it: up to 99 good notifications burned attempts and could end failed.
"""

from __future__ import annotations

import json

import redis

from tests.conftest import ManualClock
from tests.helpers import Recorder, tick
from zsched import Scheduler


def _state(zs: Scheduler, nid: int) -> dict[str, object]:
    p = zs.core.keys.for_id(nid)
    raw = zs.redis.hget(p.state, str(nid))
    assert isinstance(raw, bytes)
    got = json.loads(raw)
    assert isinstance(got, dict)
    return got


def _failed(zs: Scheduler, nid: int) -> set[int]:
    members: list[bytes] = zs.redis.zrange(zs.core.keys.for_id(nid).failed, 0, -1)
    return {int(m) for m in members}


def test_corrupt_records_fail_alone_and_their_batch_is_delivered(pinned: Scheduler, clock: ManualClock) -> None:
    r: redis.Redis = pinned.redis
    # one recipient a call: each has a record of its own to corrupt from the start
    ids = [pinned.schedule([f"u{i}"], "Batch", "mixed", delay=0).notification_ids[0] for i in range(12)]
    p = pinned.core.keys.for_id(ids[0])
    no_payload, bad_state, wrong_type, wrong_state = ids[2], ids[5], ids[8], ids[11]
    r.hdel(p.notifications, str(no_payload))  # claim.lua hands it on as '{}': no title
    r.hset(p.state, str(bad_state), "{not json")
    r.hset(p.notifications, str(wrong_type), json.dumps({"title": 5, "message": "x"}))
    r.hset(p.state, str(wrong_state), json.dumps({**_state(pinned, wrong_state), "scheduled_at": "soon"}))
    bad = {no_payload, bad_state, wrong_type, wrong_state}

    recorder = Recorder()
    tick(pinned, recorder)  # returns: the worker is not taken down with the bad records

    good = [i for i in ids if i not in bad]
    assert sorted(n.id for n in recorder.delivered) == good
    for nid in good:
        n = pinned.status(nid)
        assert (n.scheduled_status, n.attempts) == ("sent", 1)
    assert _failed(pinned, ids[0]) == bad
    assert r.zcard(p.processing) == 0
    for nid in bad:
        st = _state(pinned, nid)
        assert st["status"] == "failed", (nid, st)
        assert str(st["last_error"]).startswith("cannot decode the stored record: "), (nid, st)
    assert "Expected `str`, got `int` - at `$.title`" in str(_state(pinned, wrong_type)["last_error"])

    clock.advance(60_000)
    again = Recorder()
    tick(pinned, again)  # nothing comes back: failed for good at once, not retried
    assert again.delivered == []
    assert _failed(pinned, ids[0]) == bad


def test_a_corrupt_record_whose_claimer_died_is_failed_by_reap(pinned: Scheduler, clock: ManualClock) -> None:
    core = pinned.core
    good, bad = (pinned.schedule([who], "Held", "then dropped", delay=0).notification_ids[0] for who in ("ann", "bob"))
    p = core.keys.for_id(good)
    pinned.redis.hset(p.state, str(bad), '{"status": ')
    claimed = pinned.run(core.claim(p, 10, 1000))  # the worker holding them dies here
    assert [n.id for n in claimed.notifications] == [good]
    assert [(b.id, b.attempts) for b in claimed.poisoned] == [(bad, 0)]
    assert claimed.poisoned[0].reason.startswith("cannot decode the stored record: Input data was truncated")
    clock.advance(2000)
    assert pinned.run(core.reap(p, lease_ms=1000)) == (1, 1)  # one corrupt record does not jam every reap
    assert _state(pinned, bad)["status"] == "failed"
    assert _failed(pinned, bad) == {bad}
    assert pinned.status(good).scheduled_status == "pending"
