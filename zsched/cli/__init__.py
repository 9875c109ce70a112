"""The ``zsched`` command: one module per command group (``run``, ``tokens``, ``notifications``, ``dead``)."""

from .main import main

__all__ = ["main"]
