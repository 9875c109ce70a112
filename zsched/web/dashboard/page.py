"""The dashboard page: one HTML file, one stylesheet and one script, served from the package with a strict
Content-Security-Policy (nothing inline, nothing from elsewhere), so a page that shows user-written titles cannot
be made to run them. The page holds its token in sessionStorage and sends it as a header, never in a URL."""

from __future__ import annotations

from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
"""Only this origin's own script and stylesheet run; no inline code, no other origin, no framing."""
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def _read(name: str) -> bytes:
    return (resources.files(__package__) / "static" / name).read_bytes()


async def page(request: Request) -> Response:
    """GET /dashboard: the page."""
    return Response(_read("index.html"), media_type="text/html; charset=utf-8", headers=HEADERS)


async def script(request: Request) -> Response:
    """GET /dashboard/dashboard.js: the page's script."""
    return Response(_read("dashboard.js"), media_type="text/javascript; charset=utf-8", headers=HEADERS)


async def stylesheet(request: Request) -> Response:
    """GET /dashboard/dashboard.css: the page's stylesheet (light or dark, as the browser prefers)."""
    return Response(_read("dashboard.css"), media_type="text/css; charset=utf-8", headers=HEADERS)


def routes() -> list[BaseRoute]:
    """The page's routes."""
    return [
        Route("/dashboard", page, methods=["GET"]),
        Route("/dashboard/dashboard.js", script, methods=["GET"]),
        Route("/dashboard/dashboard.css", stylesheet, methods=["GET"]),
    ]
