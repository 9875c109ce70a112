"""A failure report from a worker that no longer holds the lease must not requeue the notification.

Found by the state-machine test: worker A's lease expires, worker B claims the notification again, then
A's (or a re-sent) failure report arrives. Before the fix the retry script requeued it under B's feet,
and a third claim pushed attempts past the policy's maximum.
"""

from __future__ import annotations

from tests.conftest import ManualClock
from zsched import Scheduler


def test_failure_for_an_older_attempt_is_ignored(pinned: Scheduler, clock: ManualClock) -> None:
    core, p = pinned.core, pinned.core.keys.partitions[0]
    (nid,) = pinned.schedule(["ada"], "Stale", "report", delay=0).notification_ids
    (first,) = pinned.run(core.claim(p, 1, 1000)).notifications  # worker A, attempt 1
    clock.advance(1000)
    assert pinned.run(core.reap(p)) == (1, 0)
    (second,) = pinned.run(core.claim(p, 1, 1000)).notifications  # worker B, attempt 2
    assert second.attempts == 2
    assert pinned.run(core.fail(p, [(first, "A gave up late")])) == (0, 0)
    n = pinned.status(nid)
    assert (n.scheduled_status, n.attempts) == ("processing", 2)
    assert pinned.run(core.fail(p, [(second, "B failed")])) == (1, 0)  # the holder's report counts


def test_re_sent_failure_reports_cannot_push_attempts_past_the_policy(pinned: Scheduler, clock: ManualClock) -> None:
    core, p = pinned.core, pinned.core.keys.partitions[0]  # policy: 50, 100, 200 ms -> four attempts
    (nid,) = pinned.schedule(["bea"], "Twice", "sent", delay=0).notification_ids
    (previous,) = pinned.run(core.claim(p, 1, 30_000)).notifications
    assert pinned.run(core.fail(p, [(previous, "down")])) == (1, 0)
    for _ in range(2 * core.retry.max_attempts):
        clock.advance(1000)
        claimed = pinned.run(core.claim(p, 1, 30_000)).notifications
        if not claimed:
            break
        pinned.run(core.fail(p, [(previous, "down")]))  # the older report arrives again (a re-sent command)
        previous = claimed[0]
    n = pinned.status(nid)
    assert n.attempts <= core.retry.max_attempts
    assert (n.scheduled_status, n.attempts) == ("processing", 2)
