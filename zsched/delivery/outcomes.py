"""What the worker says about each delivery: a log line per outcome (a notification's id, recipient, attempt
and lateness as fields too, for structured logs), a call of its observer (metrics), and for what the claim script
delivered itself, its tracing spans too."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from .. import tracing
from ..engine.leases import Claimed
from ..models import Notification

log = logging.getLogger("zsched.worker")

LOG_EACH_UP_TO = 10
"""Batches up to this size log one line per notification sent; larger ones log one line in all."""

Observer = Callable[[str, Notification, float], None]
"""Called with ("sent" | "retry" | "failed", notification, lateness in ms) after each outcome."""


def report(
    sent: Sequence[Notification],
    failures: Sequence[tuple[Notification, str]],
    delays: Mapping[int, int | None],
    done_ms: float,
    max_attempts: int,
    observe: Observer,
) -> None:
    """Log and observe one batch's outcomes: ``sent``, and ``failures`` with the delay each retries after
    (None: failed for good)."""
    # A line per notification while batches are small; a large batch gets one line naming its ids, so
    # a busy worker does not spend its time logging (each notification's line is still at DEBUG).
    each = log.isEnabledFor(logging.DEBUG) or len(sent) <= LOG_EACH_UP_TO
    lateness: list[float] = []
    for n in sent:
        late_ms = done_ms - n.scheduled_at.timestamp() * 1000
        lateness.append(late_ms)
        if each:
            log.info(
                "sent notification %s to %s (attempt %d, %.1f ms after due)",
                n.id,
                n.recipient,
                n.attempts,
                late_ms,
                extra=_fields(n, late_ms),
            )
        observe("sent", n, late_ms)
    if not each and log.isEnabledFor(logging.INFO):
        log.info(
            "sent %d notifications (ids %s; %.1f to %.1f ms after due)",
            len(sent),
            ",".join(str(n.id) for n in sent),
            min(lateness),
            max(lateness),
        )
    for n, described in failures:
        error = described.partition("\n")[0]  # later lines (a webhook's answer) are for admins, not logs
        delay = delays[n.id]
        late_ms = done_ms - n.scheduled_at.timestamp() * 1000
        if delay is None:
            log.error(
                "notification %s to %s failed for good after %d attempts: %s",
                n.id,
                n.recipient,
                n.attempts,
                error,
                extra=_fields(n, late_ms),
            )
            observe("failed", n, late_ms)
        else:
            log.warning(
                "notification %s to %s failed (attempt %d of %d): %s; retrying in %.1f s",
                n.id,
                n.recipient,
                n.attempts,
                max_attempts,
                error,
                delay / 1000,
                extra=_fields(n, late_ms),
            )
            observe("retry", n, late_ms)


def report_claimed(claimed: Claimed, max_attempts: int, observe: Observer, *, observed: bool) -> None:
    """Log, trace and observe what a claim delivered itself (``claimed.sent``), as ``report`` does the worker's own
    deliveries; the records are decoded only when a log line, a span or an observer (``observed``) reads them."""
    traced = tracing.recording()
    if not observed and not traced and not log.isEnabledFor(logging.INFO):
        return
    sent = claimed.sent_notifications()
    if traced:
        tracing.end_deliveries(tracing.start_deliveries(sent), [None] * len(sent))
    report(sent, [], {}, claimed.now_ms, max_attempts, observe)


def _fields(n: Notification, late_ms: float) -> dict[str, object]:
    """A delivery log line's facts as record fields, for structured logs (``ZSCHED_LOG_FORMAT=json``)."""
    return {"notification_id": n.id, "recipient": n.recipient, "attempt": n.attempts, "late_ms": round(late_ms, 1)}
