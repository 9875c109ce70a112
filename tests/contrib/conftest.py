"""The contrib tests: Django configured from the example project, and zsched's pytest plugin on our servers.

Django is configured here, when this folder is collected, not for the whole suite: a run of other folders
never loads Django, and in a full run pytest-django only moves the Django database tests to the front (its
usual order) and switches on Django's test environment, which nothing outside Django reads.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import django
import pytest
from django.conf import settings

from zsched.contrib.pytest import zsched_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

if not settings.configured:
    sys.path.insert(0, str(EXAMPLES / "django"))  # the example project's packages: reminders, appointments
    import reminders.settings as example

    settings.configure(**{name: value for name, value in vars(example).items() if name.isupper()})
    django.setup()


@pytest.fixture
def zsched_server_url(redis_url: str) -> str:
    """The plugin's test servers on each of our servers (the plugin itself starts one embedded server)."""
    return redis_url


def load_example(relative: str, name: str) -> ModuleType:
    """Import an example's module from its file, under ``name``."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


__all__ = ["load_example", "zsched_server"]
