"""FastAPI and Starlette glue: zsched's app mounted inside yours, with its lifespan, and a dependency.

A mounted ASGI app gets no lifespan of its own (only the outermost app does), and zsched's lifespan is what
connects to Redis, starts the worker and the WebSocket gateway: mounted bare, ``/healthz`` answers but the
API is 503 and ``/ws`` fails. Either mount it with ``mount``, which runs zsched's lifespan inside yours::

    zsched_app = create_app(Settings.from_env(), extra_routes=[...])
    app = FastAPI(lifespan=your_lifespan)          # or Starlette(...)
    mount(app, "/zsched", zsched_app)               # the API at /zsched/api/..., the gateway at /zsched/ws

or mount it yourself and enter ``zsched_lifespan`` in your own lifespan::

    @asynccontextmanager
    async def lifespan(app):
        async with zsched_lifespan(zsched_app) as scheduler:
            yield {"zsched": scheduler}
    app = FastAPI(lifespan=lifespan)
    app.mount("/zsched", zsched_app)

Either way, your endpoints schedule through the same connection: ``zs: Annotated[AsyncScheduler,
Depends(get_scheduler)]``. Only Starlette is imported here, so this works for plain Starlette apps too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from ..client import AsyncScheduler

STATE_KEY = "zsched"
"""The lifespan state's key for the scheduler: ``request.state.zsched``."""


@asynccontextmanager
async def zsched_lifespan(zsched_app: Starlette) -> AsyncIterator[AsyncScheduler]:
    """Run ``zsched_app``'s lifespan (connect, worker, gateway, services; shut down in reverse on exit) and
    give its scheduler; for a host app's lifespan when ``zsched_app`` is mounted inside it."""
    async with zsched_app.router.lifespan_context(zsched_app):
        scheduler: AsyncScheduler = zsched_app.state.scheduler
        yield scheduler


def mount(host: Starlette, path: str, zsched_app: Starlette, *, name: str = "zsched") -> None:
    """Mount ``zsched_app`` at ``path`` in ``host`` (a FastAPI or Starlette app) and run its lifespan around the
    host's own, so zsched is up before the host starts and down after it stops; the host's lifespan state
    gains ``"zsched"``: the scheduler, for ``get_scheduler``."""
    host.mount(path, zsched_app, name=name)
    inner = host.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Mapping[str, Any]]:
        async with zsched_lifespan(zsched_app) as scheduler, inner(app) as state:
            yield {**(state or {}), STATE_KEY: scheduler}

    host.router.lifespan_context = lifespan


def get_scheduler(connection: HTTPConnection) -> AsyncScheduler:
    """The mounted zsched's scheduler, from the lifespan state (a FastAPI dependency: ``Depends(get_scheduler)``)."""
    scheduler = getattr(connection.state, STATE_KEY, None)
    if not isinstance(scheduler, AsyncScheduler):
        raise RuntimeError(
            "no zsched scheduler in the lifespan state: mount zsched with zsched.contrib.fastapi.mount(...), or "
            "yield {'zsched': scheduler} from `async with zsched_lifespan(zsched_app) as scheduler` in your lifespan"
        )
    return scheduler
