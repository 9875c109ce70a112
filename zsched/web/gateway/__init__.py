"""The WebSocket gateway: ``endpoint`` (one socket's lifecycle and protocol), ``socket`` (its send queue and
the backlog/live seam) and ``subscriptions`` (the one shared pub/sub connection)."""

from .endpoint import Gateway, gateway_app

__all__ = ["Gateway", "gateway_app"]
