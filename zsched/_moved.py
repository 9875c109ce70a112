"""Import paths from before the subpackages (0.1), kept working for one release behind a DeprecationWarning.

``import zsched.core`` finds this table, warns, and hands back the module that now holds those names.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

MOVED = {
    "zsched.app": "zsched.web.app",
    "zsched.auth": "zsched.web.auth",
    "zsched.backoff": "zsched.engine.backoff",
    "zsched.channels": "zsched.delivery",
    "zsched.cli_dead": "zsched.cli.dead",
    "zsched.core": "zsched.engine",
    "zsched.dead": "zsched.engine",
    "zsched.gateway": "zsched.web.gateway",
    "zsched.http": "zsched.web.api",
    "zsched.http_errors": "zsched.web.errors",
    "zsched.keys": "zsched.engine.keys",
    "zsched.metrics": "zsched.web.metrics",
    "zsched.openapi": "zsched.web.openapi",
    "zsched.progress": "zsched.cli.progress",
    "zsched.ratelimit": "zsched.web.ratelimit",
    "zsched.scripts": "zsched.engine.scripts",
    "zsched.sockets": "zsched.web.gateway.socket",
    "zsched.subscriptions": "zsched.web.gateway.subscriptions",
    "zsched.validation": "zsched.engine.validation",
    "zsched.worker": "zsched.delivery.worker",
}
"""Old module path -> the module that now holds its names."""


class _Alias(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.new}; the old path goes away in zsched 0.3", DeprecationWarning, stacklevel=3
        )
        return importlib.import_module(self.new)

    def exec_module(self, module: ModuleType) -> None:
        """The module was imported under its new name already."""


class MovedFinder(importlib.abc.MetaPathFinder):
    """Finds the old paths in ``MOVED``; every other name is left to the usual finders."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        return None if new is None else importlib.machinery.ModuleSpec(fullname, _Alias(new))


def install() -> None:
    """Put the finder on ``sys.meta_path`` once."""
    if not any(isinstance(finder, MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedFinder())
