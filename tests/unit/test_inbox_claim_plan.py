"""Which workers have their claim deliver websocket-only notifications itself (``claim_plan``): those whose
websocket is an ``InboxDelivery`` that allows it; notifications naming no channel only when the router's
default channels are the websocket alone."""

from __future__ import annotations

from typing import Any

from zsched import Keyspace
from zsched.delivery import CallableDelivery, InboxDelivery, Router
from zsched.delivery.inbox import claim_plan
from zsched.engine.leases import InboxPlan


class _Connection:
    def register_script(self, source: str) -> Any:
        return None


def _inbox(**options: Any) -> InboxDelivery:
    return InboxDelivery(_Connection(), Keyspace(), inbox_maxlen=7, keep_ms=9_000, **options)


def test_an_inbox_alone_or_a_routers_websocket_delivers_in_the_claim() -> None:
    assert claim_plan(_inbox()) == InboxPlan(maxlen=7, keep_ms=9_000, unnamed=True)
    assert claim_plan(Router({"websocket": _inbox()})) == InboxPlan(7, 9_000, unnamed=True)
    both = Router({"websocket": _inbox(), "pager": CallableDelivery(print)}, default=("websocket", "pager"))
    assert claim_plan(both) == InboxPlan(7, 9_000, unnamed=False), "unnamed ones also go to the pager"
    assert claim_plan(Router({"websocket": _inbox(), "pager": CallableDelivery(print)}, default=("pager",))) == (
        InboxPlan(7, 9_000, unnamed=False)
    )


def test_anything_else_delivers_through_python() -> None:
    assert claim_plan(_inbox(in_claim=False)) is None
    assert claim_plan(Router({"websocket": _inbox(in_claim=False)})) is None
    assert claim_plan(Router({"websocket": CallableDelivery(print)})) is None
    assert claim_plan(Router({"pager": CallableDelivery(print)}, default=("pager",))) is None
    assert claim_plan(CallableDelivery(print)) is None
