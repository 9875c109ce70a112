"""OpenTelemetry spans, when the ``otel`` extra (``opentelemetry-api``) is installed; without it nothing is
imported and each hook costs one check of a module global.

``zsched.schedule`` covers a schedule call (library, CLI or HTTP: it is the child of the request's span when
the app is instrumented) and names the notifications it created in ``zsched.notification_ids``.
``zsched.deliver`` covers one delivery attempt of one notification, with ``zsched.notification_id``,
``zsched.lateness_ms`` (how long after its due time the attempt started, by this process's clock),
``zsched.attempt`` and ``zsched.channels``, and an error status when the attempt failed.

The two are joined by the notification id, as a correlation attribute, not by a span link: a link needs the
schedule span's context stored with every notification (about 50 bytes each, a sixth of a small one's
record) and carried by every script that moves it. Find a notification's journey by querying
``zsched.notification_id`` (delivery) and ``zsched.notification_ids`` (schedule).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

    from .models import Notification, ScheduleResult

Record = Callable[["ScheduleResult"], None]
"""Given the schedule call's result, puts its notification ids on the span."""

_UNSET: Any = object()
_tracer: Any = _UNSET  # resolved on first use: a Tracer, or None without opentelemetry-api


def tracer() -> Tracer | None:
    """zsched's tracer, or None when OpenTelemetry is not installed (then it is never imported)."""
    global _tracer
    if _tracer is _UNSET:
        if find_spec("opentelemetry") is None:
            _tracer = None
        else:
            from opentelemetry import trace

            from . import __version__

            # A proxy until the application sets its provider, so the order of setup does not matter.
            _tracer = trace.get_tracer("zsched", __version__)
    tracer: Tracer | None = _tracer
    return tracer


def _ignore(result: ScheduleResult) -> None:
    return None


_OFF: AbstractContextManager[Record] = nullcontext(_ignore)


def schedule_span() -> AbstractContextManager[Record]:
    """Around a schedule call: a ``zsched.schedule`` span; call what it yields with the result."""
    return _schedule_span(_tracer) if recording() else _OFF


_api: Any = None  # opentelemetry.trace, imported by the first ``recording`` that needs it


def recording() -> bool:
    """Whether zsched's spans are recorded: OpenTelemetry is installed and a provider that records is set. With
    the API alone (no SDK provider set) spans go nowhere, but making one costs a tenth of a schedule call, and as
    much as a delivery in the worker. A provider set later is seen on the next call."""
    global _api
    t = tracer()
    if t is None:
        return False
    if _api is None:
        from opentelemetry import trace

        _api = trace
    if isinstance(t, _api.ProxyTracer):  # records once an SDK provider is set globally
        return not isinstance(_api.get_tracer_provider(), (_api.ProxyTracerProvider, _api.NoOpTracerProvider))
    return not isinstance(t, _api.NoOpTracer)


@contextmanager
def _schedule_span(t: Tracer) -> Iterator[Record]:
    from opentelemetry.trace import SpanKind

    with t.start_as_current_span("zsched.schedule", kind=SpanKind.PRODUCER) as span:

        def record(result: ScheduleResult) -> None:
            span.set_attribute("zsched.notification_ids", result.notification_ids)
            span.set_attribute("zsched.count", result.count)
            span.set_attribute("zsched.scheduled_at", result.scheduled_at.isoformat())
            span.set_attribute("zsched.replayed", result.replayed)

        yield record


def start_deliveries(batch: Sequence[Notification]) -> list[Span]:
    """A started ``zsched.deliver`` span per notification of ``batch`` (none without OpenTelemetry)."""
    t = tracer()
    if t is None:
        return []
    from opentelemetry.trace import SpanKind

    now_ms = time.time() * 1000
    return [
        t.start_span(
            "zsched.deliver",
            kind=SpanKind.CONSUMER,
            attributes={
                "zsched.notification_id": n.id,
                "zsched.lateness_ms": round(now_ms - n.scheduled_at.timestamp() * 1000, 1),
                "zsched.attempt": n.attempts,
                "zsched.channels": n.channels,  # empty: the router's default channels
                "zsched.recipient": n.recipient,
            },
        )
        for n in batch
    ]


def end_deliveries(spans: Sequence[Span], outcomes: Sequence[BaseException | None]) -> None:
    """End each span with its notification's outcome: an error status naming the failure's first line (later
    lines, such as a webhook's answer, are for admins only)."""
    if not spans:
        return
    from opentelemetry.trace import Status, StatusCode

    for span, outcome in zip(spans, outcomes, strict=False):
        if outcome is not None:
            first = (str(outcome).splitlines() or [""])[0][:200]
            span.set_status(Status(StatusCode.ERROR, f"{type(outcome).__name__}: {first}"))
        span.end()
