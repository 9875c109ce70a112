"""The WebSocket gateway: ``endpoint`` (one socket's lifecycle and protocol), ``admission`` (who may connect),
``replay`` (the backlog sent at connect), ``messages`` (the wire format), ``socket`` (its send queue and the
backlog/live seam) and ``subscriptions`` (the one shared pub/sub connection)."""

from .endpoint import Gateway, gateway_app

__all__ = ["Gateway", "gateway_app"]
