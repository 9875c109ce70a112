"""A real gateway with enough open sockets freezes them out of full collections, delivers as before, and thaws
once they close (``zsched.web.gateway.tenure``)."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import pytest

from tests.helpers import tick
from tests.integration.wsutil import GatewayServer, open_socket, receive, until_ready, user_token, wait_for
from zsched import Scheduler


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the freeze is process-wide: leave the rest of the suite as it found it
    gc.collect()


def test_open_sockets_are_frozen_still_served_and_thawed_after_they_close(
    redis_url: str, prefix: str, zs: Scheduler
) -> None:
    token = user_token(redis_url, prefix, "ines")
    server = GatewayServer(redis_url, prefix, freeze_from_sockets=2).start()
    tenure = server.gateway._tenure
    try:
        with open_socket(server.url(token)) as first:
            assert until_ready(first) == []
            wait_for(lambda: server.gateway.connections == 1, "the first socket")
            time.sleep(1.5)  # a tick or two (one a second) with one socket open: below its count, no freeze
            assert tenure.opened == 1 and not tenure.frozen and gc.get_freeze_count() == 0
            with open_socket(server.url(token)) as second:
                assert until_ready(second) == []
                wait_for(lambda: tenure.frozen, "the freeze once two sockets are open", timeout_s=5)
                assert gc.get_freeze_count() > 0
                (nid,) = zs.schedule(["ines"], "Frozen", "still delivered", delay=0).notification_ids
                tick(zs)
                assert receive(first)["id"] == nid and receive(second)["id"] == nid
        wait_for(lambda: tenure.thaws == 1, "the thaw after both sockets closed", timeout_s=5)
    finally:
        server.stop()
