"""A FastAPI app with zsched mounted at /zsched, scheduling a welcome from its own endpoint.

    ZSCHED_REDIS_URL=redis://127.0.0.1:6379/0 uvicorn app:app      # from this folder; no URL: ./.zsched
    curl -X POST 'localhost:8000/signup?user=bob'                    # {"user":"bob","welcome_id":1}
    zsched token create --user bob                                   # then: /zsched/ws?token=..., or
    curl localhost:8000/zsched/api/notifications/1/ -H "Authorization: Token zs_..."

The worker, the HTTP API (/zsched/api/..., /zsched/docs) and the WebSocket gateway (/zsched/ws) run in this
process, started and stopped with the app by ``mount``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from zsched import AsyncScheduler, Settings
from zsched.contrib.fastapi import get_scheduler, mount
from zsched.web.app import create_app

Scheduler = Annotated[AsyncScheduler, Depends(get_scheduler)]


async def version(request: Request) -> JSONResponse:
    """An extra route served inside zsched's app (at /zsched/version), with its state at hand."""
    return JSONResponse({"prefix": request.app.state.settings.redis.prefix})


def build_app(settings: Settings | None = None, *, welcome_after: timedelta = timedelta(minutes=10)) -> FastAPI:
    """The host app: its own endpoints, zsched mounted at /zsched with the worker and gateway running."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield  # the host's own start-up and shut-down go here; zsched is up around them

    app = FastAPI(title="signups", lifespan=lifespan)
    mount(app, "/zsched", create_app(settings or Settings.from_env(), extra_routes=[Route("/version", version)]))

    @app.post("/signup")
    async def signup(user: str, zs: Scheduler) -> dict[str, object]:
        r = await zs.schedule([user], "Welcome", f"Hello {user}, glad you are here", delay=welcome_after)
        return {"user": user, "welcome_id": r.notification_ids[0]}

    @app.get("/signup/{user}/welcome")
    async def welcome(user: str, zs: Scheduler) -> list[dict[str, object]]:
        page = await zs.list_for(user)
        return [{"id": n.id, "title": n.title, "status": n.scheduled_status} for n in page.items]

    return app


app = build_app()
