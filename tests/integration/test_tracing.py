"""OpenTelemetry (the ``otel`` extra): a schedule call records a ``zsched.schedule`` span naming its
notification ids, and each delivery attempt a ``zsched.deliver`` span carrying the notification id, its
lateness, attempt and channels, an error status when it failed; the notification id joins them. Without
OpenTelemetry installed, zsched imports none of it and works as before."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.conftest import ManualClock
from tests.helpers import tick
from zsched import CallableDelivery, Router, Scheduler, tracing
from zsched.models import Notification


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """zsched's tracer from an SDK provider exporting to memory (the global provider is left alone)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("zsched"))
    yield exporter
    provider.shutdown()


def test_a_scheduled_and_delivered_notification_has_both_spans(
    pinned: Scheduler, clock: ManualClock, spans: InMemorySpanExporter
) -> None:
    def refuse(n: Notification) -> None:
        if n.recipient == "bob":
            raise RuntimeError("bob's pager is off\nsecond line for admins")

    router = Router({"pager": CallableDelivery(refuse)}, default=["pager"])
    result = pinned.schedule(["alice", "bob"], "Traced", "...", delay=0.1)
    clock.advance(250)
    tick(pinned, router)
    (scheduled,) = [s for s in spans.get_finished_spans() if s.name == "zsched.schedule"]
    assert scheduled.kind is SpanKind.PRODUCER
    assert scheduled.attributes is not None
    assert scheduled.attributes["zsched.notification_ids"] == tuple(result.notification_ids)
    assert scheduled.attributes["zsched.count"] == 2
    deliveries = {
        s.attributes["zsched.notification_id"]: s
        for s in spans.get_finished_spans()
        if s.attributes and s.name == "zsched.deliver"
    }
    alice, bob = result.notification_ids
    assert set(deliveries) == {alice, bob}  # joined to the schedule span by the notification id
    for span in deliveries.values():
        assert span.kind is SpanKind.CONSUMER and span.attributes is not None
        assert span.attributes["zsched.attempt"] == 1
        assert isinstance(span.attributes["zsched.lateness_ms"], float)
        assert span.attributes["zsched.channels"] == ()  # none named: the router's default
    assert deliveries[alice].status.status_code is StatusCode.UNSET
    assert deliveries[bob].status.status_code is StatusCode.ERROR
    assert deliveries[bob].status.description == "RuntimeError: bob's pager is off"


def test_without_opentelemetry_nothing_is_imported(redis_url: str, prefix: str) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["opentelemetry"] = None  # as if the otel extra were not installed: imports of it fail
        from tests.helpers import tick
        import redis
        from zsched import CallableDelivery, Keyspace, Router, Scheduler, Core, tracing
        seen = []
        with Scheduler(redis.Redis.from_url({redis_url!r}), core=Core(Keyspace({prefix!r}))) as zs:
            (nid,) = zs.schedule(["alice"], "Untraced", "...", delay=0).notification_ids
            tick(zs, Router({{"pager": CallableDelivery(seen.append)}}, default=["pager"]))
            assert zs.status(nid).scheduled_status == "sent", zs.status(nid)
        assert tracing.tracer() is None and [n.id for n in seen] == [nid]
        assert not [m for m in sys.modules if m.startswith("opentelemetry.")], "imported"
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


def test_importing_zsched_does_not_import_opentelemetry() -> None:
    """Installed, it is imported on first use only (redis-py imports it on its own: that is taken first)."""
    code = (
        "import sys, redis, redis.asyncio, httpx, msgspec; before = set(sys.modules); "
        "import zsched, zsched.client, zsched.delivery; "
        "print([m for m in set(sys.modules) - before if 'opentelemetry' in m])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
