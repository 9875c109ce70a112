"""The engine: every operation as a plan of Redis steps, the keyspace, the scripts, validation, backoff.

No I/O beyond the drivers in ``zsched.client``, and nothing about the web.
"""

from .backoff import RetryPolicy
from .core import DAY_MS, Claimed, Command, Core, Op, Retention, Script, Step
from .keys import Keyspace, Partition
from .minutes import Minute, Tally, add_minute, read_minutes
from .presence import Presence, recipient_sockets
from .processes import ProcessInfo, ProcessState, list_processes
from .producer import requeue_dead
from .tables import TABLES, Row, TablePage, table_page
from .views import list_dead

__all__ = [
    "DAY_MS",
    "TABLES",
    "Claimed",
    "Command",
    "Core",
    "Keyspace",
    "Minute",
    "Op",
    "Partition",
    "Presence",
    "ProcessInfo",
    "ProcessState",
    "Retention",
    "RetryPolicy",
    "Row",
    "Script",
    "Step",
    "TablePage",
    "Tally",
    "add_minute",
    "list_dead",
    "list_processes",
    "read_minutes",
    "recipient_sockets",
    "requeue_dead",
    "table_page",
]
