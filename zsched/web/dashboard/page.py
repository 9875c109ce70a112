"""The dashboard page: one HTML file, one stylesheet and one script, served from the package with a strict
Content-Security-Policy (nothing inline, nothing from elsewhere), so a page that shows user-written titles cannot
be made to run them. The page holds its token in sessionStorage and sends it as a header, never in a URL."""

from __future__ import annotations

from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
"""Only this origin's own script and stylesheet run; no inline code, no other origin, no framing."""
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
FILES = {"dashboard.js": "text/javascript", "dashboard.css": "text/css", "index.html": "text/html"}


@cache
def _read(name: str) -> bytes:
    return (resources.files(__package__) / "static" / name).read_bytes()


async def page(request: Request) -> Response:
    """GET /dashboard: the page."""
    return Response(_read("index.html"), media_type="text/html; charset=utf-8", headers=HEADERS)


async def asset(request: Request) -> Response:
    """GET /dashboard/static/{name}: the page's script or stylesheet."""
    name = request.path_params["name"]
    if name not in FILES or name == "index.html":
        return Response("not found", status_code=404, media_type="text/plain", headers=HEADERS)
    return Response(_read(name), media_type=f"{FILES[name]}; charset=utf-8", headers=HEADERS)


async def slash(request: Request) -> Response:
    """GET /dashboard/: to the page."""
    return RedirectResponse(request.url.path.rstrip("/"), headers=HEADERS)


def routes() -> list[BaseRoute]:
    """The page's routes."""
    return [
        Route("/dashboard", page, methods=["GET"]),
        Route("/dashboard/", slash, methods=["GET"]),
        Route("/dashboard/static/{name}", asset, methods=["GET"]),
    ]
