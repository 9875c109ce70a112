"""zsched.contrib.django against a real server: the example project's view schedules on commit, a worker
delivers, the view reads the status; a rollback schedules nothing; settings come from Django, then ZSCHED_*."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from tests.conftest import ManualClock
from tests.helpers import Recorder, tick
from zsched import Core, Keyspace, Scheduler
from zsched.contrib import django as zdjango
from zsched.errors import NaiveDatetimeError
from zsched.testing import ZschedTestServer


@pytest.fixture
def configured(settings: Any, redis_url: str, prefix: str) -> Any:
    """Django's settings pointing zsched at the test's server and prefix (restored, and reconnected, after)."""
    settings.ZSCHED_URL = redis_url
    settings.ZSCHED_PREFIX = prefix
    yield settings
    zdjango.close_scheduler()


def worker_at(redis_url: str, prefix: str, when: datetime) -> Scheduler:
    """A scheduler on the test's keyspace whose scripts read ``when`` as now: what a worker then sees."""
    return Scheduler.from_url(redis_url, core=Core(Keyspace(prefix), clock=ManualClock(int(when.timestamp() * 1000))))


@pytest.mark.django_db(transaction=True)
def test_a_view_schedules_on_commit_a_worker_delivers_and_the_view_reads_sent(
    configured: Any, redis_url: str, prefix: str
) -> None:
    client = Client()
    starts_at = datetime.now(UTC) + timedelta(hours=3)
    created = client.post("/appointments/", {"who": "bob", "what": "Dentist", "starts_at": starts_at.isoformat()})
    assert created.status_code == 201
    pk = created.json()["id"]

    shown = client.get(f"/appointments/{pk}/").json()
    assert shown["reminder_status"] == "pending"
    reminder = zdjango.get_scheduler().status(shown["reminder_id"])
    assert (reminder.recipient, reminder.title, reminder.data) == ("bob", "Reminder: Dentist", {"appointment": pk})
    assert abs(reminder.scheduled_at - (starts_at - timedelta(hours=1))) < timedelta(seconds=5)

    recorder = Recorder()
    early = worker_at(redis_url, prefix, starts_at - timedelta(hours=1, minutes=1))
    tick(early, recorder)
    assert recorder.delivered == []  # a minute before the reminder is due: nothing
    on_time = worker_at(redis_url, prefix, starts_at - timedelta(minutes=59))
    tick(on_time, recorder)
    early.close()
    on_time.close()
    assert [n.id for n in recorder.delivered] == [shown["reminder_id"]]
    assert client.get(f"/appointments/{pk}/").json()["reminder_status"] == "sent"


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_schedules_nothing(configured: Any) -> None:
    zs = zdjango.get_scheduler()
    with pytest.raises(RuntimeError, match="changed my mind"), transaction.atomic():
        zdjango.schedule_on_commit(["bob"], "Never", "rolled back", delay=0)
        raise RuntimeError("changed my mind")
    assert zs.list().items == []

    with transaction.atomic():  # a savepoint rolled back inside a committed transaction: its schedule is dropped
        zdjango.schedule_on_commit(["alice"], "Kept", "outer", delay=60)
        with pytest.raises(RuntimeError), transaction.atomic():
            zdjango.schedule_on_commit(["bob"], "Dropped", "inner", delay=60)
            raise RuntimeError
        assert zs.list().items == []  # not yet: the outer transaction has not committed
    assert [(n.recipient, n.title) for n in zs.list().items] == [("alice", "Kept")]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_it_schedules_at_once_and_hands_back_the_result(configured: Any) -> None:
    results: list[Any] = []
    zdjango.schedule_on_commit([1, 2], "Now", "autocommit", delay=30, on_scheduled=results.append)
    [result] = results
    assert result.count == 2
    assert [zdjango.get_scheduler().status(i).scheduled_status for i in result.notification_ids] == ["pending"] * 2


@pytest.mark.django_db(transaction=True)
def test_expiry_and_collapse_keys_pass_through_on_commit(configured: Any) -> None:
    results: list[Any] = []
    for title in ("Old", "New"):
        zdjango.schedule_on_commit(
            ["ann"], title, "m", delay=30, on_late="skip", collapse_key="digest", on_scheduled=results.append
        )
    zs = zdjango.get_scheduler()
    old, new = (zs.status(r.notification_ids[0]) for r in results)
    assert (old.scheduled_status, new.scheduled_status) == ("collapsed", "pending")
    assert (new.on_late, new.late_after_ms, new.collapse_key) == ("skip", 60_000, "digest")


@pytest.mark.django_db(transaction=True)
def test_a_bad_call_raises_in_the_view_not_after_the_commit(configured: Any) -> None:
    with transaction.atomic():
        with pytest.raises(NaiveDatetimeError):
            zdjango.schedule_on_commit(["bob"], "Naive", "no timezone", at=datetime(2030, 1, 1))
        with pytest.raises(ValueError, match="title"):
            zdjango.schedule_on_commit(["bob"], "", "no title", delay=1)
    assert zdjango.get_scheduler().list().items == []


def test_settings_come_from_django_then_the_environment(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZSCHED_REDIS_URL", "redis://env-host:6379/0")
    monkeypatch.setenv("ZSCHED_PARTITIONS", "4")
    monkeypatch.setenv("ZSCHED_SOCKET_TIMEOUT_S", "1.5")
    settings.ZSCHED_URL = None
    settings.ZSCHED_PREFIX = "from-django"
    settings.ZSCHED_PARTITIONS = None
    chosen = zdjango.zsched_settings()
    assert (chosen.redis.redis_url, chosen.redis.prefix, chosen.redis.partitions) == (
        "redis://env-host:6379/0",
        "from-django",
        4,
    )
    settings.ZSCHED_URL = "redis://django-host:6379/2"
    settings.ZSCHED_PARTITIONS = 2
    chosen = zdjango.zsched_settings()
    assert (chosen.redis.redis_url, chosen.redis.partitions) == ("redis://django-host:6379/2", 2)

    zs = zdjango.get_scheduler()  # made lazily; no connection is opened until a call
    try:
        kwargs = zs.redis.connection_pool.connection_kwargs
        assert (kwargs["host"], kwargs["db"], kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (
            "django-host",
            2,
            1.5,
            2.0,
        )
        assert len(zs.core.keys.partitions) == 2 and zs.core.keys.prefix == "from-django"
        assert zdjango.get_scheduler() is zs  # one per process
        settings.ZSCHED_PREFIX = "changed"  # override_settings of a zsched setting: a new scheduler next time
        assert zdjango.get_scheduler() is not zs
    finally:
        zdjango.close_scheduler()


@pytest.mark.django_db(transaction=True)
def test_test_mode_the_view_schedules_into_the_test_server(zsched_server: ZschedTestServer) -> None:
    """What a project's own test looks like (the README's example): no worker, the clock moved by hand."""
    client = Client()
    starts_at = zsched_server.now + timedelta(days=1)
    created = client.post("/appointments/", {"who": "bob", "what": "Dentist", "starts_at": starts_at.isoformat()})
    [reminder] = zsched_server.pending("bob")
    assert reminder.scheduled_at == starts_at - timedelta(hours=1)
    assert reminder.data == {"appointment": created.json()["id"]}
    assert zsched_server.run_due(advance=timedelta(hours=22)) == []
    [sent] = zsched_server.run_due(until=reminder.scheduled_at)
    assert sent.title == "Reminder: Dentist" and zsched_server.outbox == [sent]
    assert client.get(f"/appointments/{created.json()['id']}/").json()["reminder_status"] == "sent"


@pytest.mark.django_db(transaction=True)
def test_an_appointment_starting_within_the_hour_is_reminded_at_once(zsched_server: ZschedTestServer) -> None:
    starts_at = zsched_server.now + timedelta(minutes=30)
    Client().post("/appointments/", {"who": "bob", "what": "Call", "starts_at": starts_at.isoformat()})
    [sent] = zsched_server.run_due()
    assert sent.title == "Reminder: Call"
