"""The background tasks a serving process cannot live without: the worker, the gateway's pub/sub reader.

A task that ends while the process is not stopping is a death, not a shutdown: the process turns unready
(``/readyz`` answers 503 with the reason) and stops itself, so a supervisor restarts it instead of leaving a
process that answers HTTP but delivers nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable

log = logging.getLogger("zsched.server")


def stop_this_process(reason: str) -> None:
    """The default reaction to a death: SIGTERM ourselves, so the server shuts down as on any stop."""
    os.kill(os.getpid(), signal.SIGTERM)


class Liveness:
    """Watches tasks; the first one to die sets ``fatal`` and calls ``on_fatal`` once."""

    def __init__(self, on_fatal: Callable[[str], None] = stop_this_process) -> None:
        self.on_fatal = on_fatal
        self.fatal: str | None = None
        self.stopping = False

    def watch(self, name: str, task: asyncio.Task[None]) -> None:
        """Treat ``task`` ending before ``stopping`` is set as the process's death."""
        task.add_done_callback(lambda done: self._ended(name, done))

    def _ended(self, name: str, task: asyncio.Task[None]) -> None:
        if self.stopping or self.fatal is not None:
            return
        error = None if task.cancelled() else task.exception()
        self.fatal = f"the {name} stopped: {error!r}" if error is not None else f"the {name} stopped"
        log.critical("%s; this process is no longer ready and stops", self.fatal, exc_info=error)
        self.on_fatal(self.fatal)
