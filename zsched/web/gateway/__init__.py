"""The WebSocket gateway: ``endpoint`` (one socket's lifecycle), ``admission`` (who may connect, how often),
``replay`` (the backlog sent at connect), ``inbound`` (what a client sends, within its limits), ``messages``
(the wire format), ``revocation`` (revoked tokens lose their sockets), ``socket`` (its send queue and the
backlog/live seam) and ``subscriptions`` (the one shared pub/sub connection)."""

from .endpoint import Gateway, gateway_app

__all__ = ["Gateway", "gateway_app"]
