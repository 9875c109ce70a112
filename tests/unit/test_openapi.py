"""The OpenAPI document covers every route the app serves, and the docs page renders it without assets."""

from __future__ import annotations

from starlette.routing import Route, WebSocketRoute

from zsched.settings import Settings
from zsched.web import docs_page, openapi
from zsched.web.app import create_app


def test_every_route_and_method_is_documented() -> None:
    app = create_app(Settings.of(redis_url="redis://127.0.0.1:1/0"), run_worker=False)
    doc = openapi.document()
    for route in app.routes:
        if isinstance(route, WebSocketRoute):
            assert "101" in doc["paths"][route.path]["get"]["responses"]
            continue
        assert isinstance(route, Route)
        path = route.path.replace("{id:int}", "{id}")
        assert path in doc["paths"], path
        for method in (route.methods or set()) - {"HEAD"}:
            assert method.lower() in doc["paths"][path], (method, path)
    for path, methods in doc["paths"].items():
        for op in methods.values():
            for status, response in op["responses"].items():
                assert response["description"], (path, status)


def test_docs_page_is_self_contained() -> None:
    page = docs_page.html()
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "POST /api/notifications/schedule/" in page and "429" in page


def test_mounted_under_a_path_the_document_and_page_point_there() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from tests.integration.http_support import TestClient

    zapp = create_app(Settings.of(redis_url="redis://127.0.0.1:1/0"), run_worker=False)
    host = Starlette(routes=[Mount("/zsched", app=zapp)])
    with TestClient(host) as c:  # the host's lifespan only: /openapi.json and /docs need no Redis
        assert c.get("/zsched/openapi.json").json()["servers"] == [{"url": "/zsched"}]
        assert "href='openapi.json'" in c.get("/zsched/docs").text
