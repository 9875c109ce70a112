"""The dashboard at ``/dashboard``: a page (``page``) over admin endpoints of the HTTP API (``endpoints``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from . import page
from .endpoints import DashboardApi

if TYPE_CHECKING:
    from ..api import Api

__all__ = ["DashboardApi", "routes"]


def routes(api: Api) -> list[BaseRoute]:
    """The page and its endpoints, served with ``api``'s authentication and scheduler."""
    return [*DashboardApi(api).routes(), *page.routes()]
