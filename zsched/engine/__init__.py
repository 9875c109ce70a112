"""The engine: every operation as a plan of Redis steps, the keyspace, the scripts, validation, backoff.

No I/O beyond the drivers in ``zsched.client``, and nothing about the web.
"""

from .backoff import RetryPolicy
from .core import DAY_MS, Claimed, Command, Core, Op, Retention, Script, Step
from .keys import Keyspace, Partition
from .producer import requeue_dead
from .views import list_dead

__all__ = [
    "DAY_MS",
    "Claimed",
    "Command",
    "Core",
    "Keyspace",
    "Op",
    "Partition",
    "Retention",
    "RetryPolicy",
    "Script",
    "Step",
    "list_dead",
    "requeue_dead",
]
