"""Django glue: zsched configured from Django's settings, one scheduler per process, scheduling on commit.

In ``settings.py`` (each optional; unset, zsched's own ``ZSCHED_*`` environment decides, and without a URL
the embedded server in ``./.zsched`` is used)::

    ZSCHED_URL = "redis://127.0.0.1:6379/0"
    ZSCHED_PREFIX = "myproject"      # the key prefix; workers and ``zsched serve`` must use the same
    ZSCHED_PARTITIONS = 1            # likewise

In a view::

    with transaction.atomic():
        appointment = Appointment.objects.create(...)
        schedule_on_commit([appointment.user_id], "Dentist", "at 9:00", at=appointment.starts_at - HOUR)

``get_scheduler()`` is the configured ``zsched.Scheduler`` for everything else (status, cancel, listing).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.db import transaction

from ..client import Scheduler
from ..models import ScheduleResult
from ..settings import Settings

DJANGO_SETTINGS = {"ZSCHED_URL": "redis_url", "ZSCHED_PREFIX": "prefix", "ZSCHED_PARTITIONS": "partitions"}
"""Django setting -> the zsched setting it gives."""

_lock = threading.Lock()
_scheduler: Scheduler | None = None
_override: list[Scheduler] = []  # use_scheduler's, innermost last


def zsched_settings() -> Settings:
    """zsched's settings: its ``ZSCHED_*`` environment, overridden by the Django settings in ``DJANGO_SETTINGS``."""
    values = {field: getattr(django_settings, name, None) for name, field in DJANGO_SETTINGS.items()}
    return Settings.from_env(**values)  # None values are skipped: the environment, then the default, decides


def connect(settings: Settings) -> Scheduler:
    """A scheduler with bounded socket timeouts (``ZSCHED_SOCKET_TIMEOUT_S``, ``ZSCHED_CONNECT_TIMEOUT_S``),
    so a hung Redis fails a request with ``UnavailableError`` instead of hanging it."""
    server = settings.server()
    cluster = settings.clustered(server)
    connection = settings.connect(server, max_connections=settings.redis.pool_size, cluster=cluster)
    return Scheduler(connection, core=settings.core(cluster=cluster), server=server)


def get_scheduler() -> Scheduler:
    """The process's scheduler, made on first use from ``zsched_settings()`` (thread-safe)."""
    global _scheduler
    if _override:
        return _override[-1]
    with _lock:
        if _scheduler is None:
            _scheduler = connect(zsched_settings())
        return _scheduler


def close_scheduler() -> None:
    """Close the process's scheduler, if one was made; the next ``get_scheduler()`` makes a new one."""
    global _scheduler
    with _lock:
        scheduler, _scheduler = _scheduler, None
    if scheduler is not None:
        scheduler.close()


@contextmanager
def use_scheduler(scheduler: Scheduler) -> Iterator[Scheduler]:
    """Inside the block, ``get_scheduler()`` and ``schedule_on_commit`` use ``scheduler`` (tests use this with
    ``zsched.testing.ZschedTestServer``; the caller keeps owning ``scheduler``)."""
    _override.append(scheduler)
    try:
        yield scheduler
    finally:
        _override.remove(scheduler)


def schedule_on_commit(
    recipients: Iterable[object],
    title: str,
    message: str,
    *,
    at: datetime | None = None,
    delay: timedelta | float | None = None,
    type: str = "system",
    priority: str = "normal",
    data: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    created_by: str | None = None,
    channels: Iterable[str] = (),
    expires_at: datetime | None = None,
    on_late: str = "send",
    late_after: timedelta | float | None = None,
    collapse_key: str | None = None,
    digest_key: str | None = None,
    digest_window: timedelta | float | None = None,
    digest_max: int | None = None,
    on_scheduled: Callable[[ScheduleResult], object] | None = None,
    using: str | None = None,
    robust: bool = False,
) -> None:
    """Schedule as ``Scheduler.schedule`` does, once the transaction around this call commits (at once outside
    one); if it rolls back, nothing is scheduled. The arguments are checked here, so a bad call raises in the
    view, not after the commit; ``delay`` counts from the commit. ``on_scheduled`` gets the result (e.g. to
    store the notification id); ``using`` and ``robust`` are ``transaction.on_commit``'s."""
    options: dict[str, Any] = {
        "at": at,
        "delay": delay,
        "type": type,
        "priority": priority,
        "data": None if data is None else dict(data),  # as it is now, not as the caller may change it later
        "idempotency_key": idempotency_key,
        "created_by": created_by,
        "channels": tuple(channels),
        "expires_at": expires_at,
        "on_late": on_late,
        "late_after": late_after,
        "collapse_key": collapse_key,
        "digest_key": digest_key,
        "digest_window": digest_window,
        "digest_max": digest_max,
    }
    people = list(recipients)
    scheduler = get_scheduler()
    check = scheduler.core.schedule(people, title, message, **options)
    try:
        next(check)  # the core validates every argument before its first Redis step: this raises, or does no I/O
    finally:
        check.close()

    def schedule() -> None:
        result = scheduler.schedule(people, title, message, **options)
        if on_scheduled is not None:
            on_scheduled(result)

    transaction.on_commit(schedule, using=using, robust=robust)


def _forget_on_change(*, setting: str, **_: Any) -> None:
    """Tests' ``override_settings`` of a zsched setting: the next ``get_scheduler()`` reads the new value."""
    if setting in DJANGO_SETTINGS:
        close_scheduler()


setting_changed.connect(_forget_on_change, dispatch_uid="zsched.contrib.django")
