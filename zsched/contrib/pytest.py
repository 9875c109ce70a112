"""A pytest plugin: ``zsched_server``, a ``zsched.testing.ZschedTestServer`` of its own for each test.

Enable it in your ``conftest.py``::

    pytest_plugins = ["zsched.contrib.pytest"]

    def test_signup_schedules_a_welcome(client, zsched_server):
        client.post("/signup", {"user": "bob"})
        [welcome] = zsched_server.pending("bob")
        assert welcome.title == "Welcome"
        assert zsched_server.run_due(advance=timedelta(hours=1)) == [...]

One embedded valkey-server is started per session (``ZSCHED_TEST_URL`` names a Redis to use instead); each
test gets a fresh key prefix, its own clock and outbox, and its keys are deleted afterwards. In a Django
project (settings configured), ``zsched.contrib.django.get_scheduler()`` returns the test's scheduler for
the test's duration, so ``schedule_on_commit`` lands there.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import pytest

from ..embedded import EmbeddedServer
from ..testing import ZschedTestServer


@pytest.fixture(scope="session")
def zsched_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Redis the session's test servers use: ``ZSCHED_TEST_URL``, else one embedded valkey-server."""
    url = os.environ.get("ZSCHED_TEST_URL")
    if url:
        yield url
        return
    server = EmbeddedServer(tmp_path_factory.mktemp("zsched"), persistent=False).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def zsched_server(zsched_server_url: str) -> Iterator[ZschedTestServer]:
    """A test server on a fresh prefix; with Django configured, also what ``get_scheduler()`` returns."""
    with ZschedTestServer(zsched_server_url) as server, contextlib.ExitStack() as stack:
        if _django_configured():
            from .django import use_scheduler

            stack.enter_context(use_scheduler(server.scheduler))
        yield server


def _django_configured() -> bool:
    """Whether this is a Django project's test run (as pytest-django decides it); never imports Django itself."""
    if os.environ.get("DJANGO_SETTINGS_MODULE"):
        return True
    conf = sys.modules.get("django.conf")
    return conf is not None and bool(conf.settings.configured)
