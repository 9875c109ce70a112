"""The web face: the Starlette app, the HTTP API and its errors, OpenAPI, tokens, rate limits, metrics,
and the WebSocket gateway. The only part of zsched that imports Starlette."""

from .app import create_app
from .auth import TokenStore
from .gateway import Gateway, gateway_app

__all__ = ["Gateway", "TokenStore", "create_app", "gateway_app"]
