"""Keeps CPython's cyclic garbage collector off the objects of long-lived sockets.

An open socket is some hundreds of Python objects (transport, protocol, its two tasks, buffers) that live as
long as it does. The collector runs a full collection, which visits every tracked object, each time the objects
promoted to its oldest generation reach a quarter of those already there; deliveries push objects through the
generations all the time, so a gateway holding 10,000 sockets stops for a full collection every few seconds,
about a second each on the 2-core bench machine (``python -m bench gateway``), and every delivery due meanwhile
waits for it.

``gc.freeze()`` moves every object alive now into a permanent generation that collections skip, so after the
sockets are frozen a collection visits only what was made since. Frozen objects are still freed by reference
counting when their socket closes; only garbage in reference cycles waits, until a thaw (``gc.unfreeze()``, one
full collection, and a freeze again). A thaw runs once as many sockets have closed as half of those open (and at
least ``from_sockets``), so what waits is bounded by the churn, not by the uptime, and the full collections a
churning gateway still pays are spaced by its churn instead of by its deliveries.

It is process-wide, as the collector is: a small gateway (below ``from_sockets`` open) never freezes, so an
application embedding one keeps the collector as Python sets it.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger("zsched.gateway")


class Tenure:
    """Freezes the objects of sockets once they are open; thaws and collects once enough have closed."""

    def __init__(self, from_sockets: int = 1000) -> None:
        if from_sockets < 0:
            raise ValueError(f"from_sockets must be >= 0 (0 turns freezing off), got {from_sockets}")
        self.from_sockets = from_sockets
        self.opened = 0  # sockets opened since the last freeze
        self.closed = 0  # sockets closed since the last thaw
        self.frozen = False
        self.thaws = 0

    def open(self) -> None:
        """A socket was admitted."""
        self.opened += 1

    def close(self) -> None:
        """A socket ended."""
        self.closed += 1

    def tick(self, open_now: int) -> None:
        """Called about once a second with the sockets open now: freeze what new sockets made, thaw after churn."""
        if not self.from_sockets:
            return
        if self.frozen and self.closed >= max(self.from_sockets, open_now // 2):
            started = time.perf_counter()
            gc.unfreeze()
            found = gc.collect()
            self.closed, self.thaws = 0, self.thaws + 1
            log.info(
                "gateway thawed after churn: a full collection found %d objects in %.0f ms; %d sockets open",
                found,
                (time.perf_counter() - started) * 1000,
                open_now,
            )
            self.frozen = False
            self.opened = max(self.opened, 1)  # freeze again below
        if self.opened and open_now >= self.from_sockets:
            gc.collect(1)  # the young garbage first, so none of it is frozen
            gc.freeze()
            if not self.frozen:  # sockets closed before a freeze left nothing frozen behind
                self.closed = 0
            self.opened, self.frozen = 0, True
