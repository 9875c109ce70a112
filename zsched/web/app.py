"""Assembles the web face: settings -> scheduler + worker + API (+ any extra routes) -> one Starlette app.

Kept inside the package so ``zsched serve`` works from an installed wheel; ``server.py`` at the top of the
checkout is the ASGI entry (``uvicorn server:app``) and only calls ``create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from ..client import AsyncScheduler
from ..delivery import Delivery, Router, Worker, router_from_settings
from ..errors import ZschedError
from ..settings import Settings
from .api import Api
from .auth import TOKEN_PREFIX
from .errors import ApiError, handle
from .gateway import Gateway
from .metrics import Metrics

log = logging.getLogger("zsched.server")

Service = Callable[[Starlette], AbstractAsyncContextManager[None]]
"""Something started after the scheduler and stopped before it (the WebSocket gateway's listener)."""

STOP_TIMEOUT_S = 10.0
POOL_SIZE = 100
"""Redis connections one ``zsched serve`` process holds at most (API calls, acks, worker, pub/sub)."""
_SECRET = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_\-]+")


class RedactSecrets(logging.Filter):
    """Masks token secrets in a record (uvicorn logs request lines, and browsers send ``/ws?token=``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _SECRET.sub(TOKEN_PREFIX + "[redacted]", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SECRET.sub(TOKEN_PREFIX + "[redacted]", a) if isinstance(a, str) else a for a in record.args
            )
        return True


def redact_server_logs() -> None:
    """Install ``RedactSecrets`` on uvicorn's loggers (once; after uvicorn configured them)."""
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


def connect(settings: Settings) -> AsyncScheduler:
    """An asyncio scheduler with bounded socket timeouts, so a hung Redis becomes a 503, not a hang."""
    server = settings.server()
    # A burst (every socket acking at once) can want more connections than the pool holds: wait up to
    # 5 s for one to come free rather than fail the request, or the socket, with MaxConnectionsError.
    # A pool built by hand gets no retry policy of its own: without this one, every connection pooled before a
    # Redis restart would fail its next request (503) instead of reconnecting.
    retry = Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=3)
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.url(server),
        max_connections=POOL_SIZE,
        timeout=5,
        socket_connect_timeout=2,
        socket_timeout=5,
        retry=retry,
    )
    connection = aioredis.Redis.from_pool(pool)
    return AsyncScheduler(connection, core=settings.core(), server=server)


def create_app(
    settings: Settings | None = None,
    *,
    run_worker: bool = True,
    scheduler: AsyncScheduler | None = None,
    delivery: Delivery | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    services: Sequence[Service] = (),
    websocket: bool = True,
) -> Starlette:
    """The app. Its lifespan connects (or uses ``scheduler``, which the caller then closes), starts the
    worker unless ``run_worker`` is False, then enters ``services``; shutdown runs in reverse.

    ``app.state`` carries ``settings``, ``scheduler``, ``tokens`` and ``metrics`` for extra routes, and
    ``gateway`` when ``websocket`` is True (the default): the WebSocket gateway at ``/ws``.
    """
    settings = settings or Settings.from_env()
    metrics = Metrics()
    api = Api(
        settings.prefix,
        metrics,
        rate_per_s=settings.rate_per_s,
        rate_burst=settings.rate_burst,
        auth_fail_per_s=settings.auth_fail_per_s,
        auth_fail_burst=settings.auth_fail_burst,
        channels=settings.delivery_channels(),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redact_server_logs()
        zs = scheduler if scheduler is not None else await asyncio.to_thread(connect, settings)
        app.state.scheduler = zs
        api.attach(zs)
        worker: Worker | None = None
        task: asyncio.Task[None] | None = None
        router: Router | None = None
        if run_worker:
            if delivery is None:
                router = router_from_settings(settings, zs.redis, zs.core.keys)
            worker = Worker(
                zs, delivery or router, batch=settings.batch, lease_ms=settings.lease_ms, observer=metrics.observe
            )
            task = asyncio.create_task(worker.run(), name="zsched-worker")
        try:
            async with contextlib.AsyncExitStack() as stack:
                if websocket:
                    gateway = Gateway(
                        zs.redis,
                        zs.core.keys,
                        api.tokens,
                        allowed_origins=settings.allowed_origins,
                        failures=api.failures,
                    )
                    await gateway.start()
                    stack.push_async_callback(gateway.stop)
                    app.state.gateway = gateway
                for service in services:
                    await stack.enter_async_context(service(app))
                yield
        finally:
            if worker is not None and task is not None:
                worker.should_exit = True  # the batch in flight is finished, then run() returns
                try:
                    await asyncio.wait_for(task, STOP_TIMEOUT_S)
                except TimeoutError:
                    log.error("worker did not stop within %.0f s; cancelled", STOP_TIMEOUT_S)
            api.detach()
            if router is not None:
                await router.aclose()
            if scheduler is None:
                await zs.close()

    async def ws_endpoint(websocket_: WebSocket) -> None:
        await app.state.gateway.endpoint(websocket_)

    ws_routes = [WebSocketRoute("/ws", ws_endpoint)] if websocket else []
    app = Starlette(
        routes=[*api.routes(), *ws_routes, *extra_routes],
        lifespan=lifespan,
        exception_handlers={
            ApiError: handle,
            ZschedError: handle,
            HTTPException: handle,
            redis.ConnectionError: handle,
            redis.TimeoutError: handle,
            Exception: handle,
        },
    )
    app.state.settings = settings
    app.state.tokens = api.tokens
    app.state.metrics = metrics
    return app
