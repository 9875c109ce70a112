"""Assembles the web face: settings -> scheduler + worker + API (+ any extra routes) -> one Starlette app.

Kept inside the package so ``zsched serve`` works from an installed wheel; ``server.py`` at the top of the
checkout is the ASGI entry (``uvicorn server:app``) and only calls ``create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager

import msgspec
import redis
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from ..client import AsyncScheduler
from ..delivery import Delivery, Router, Worker, build_router, build_worker, enabled_channels
from ..delivery.heartbeat import Heartbeat
from ..delivery.outcomes import Observer
from ..engine.minutes import Tally
from ..errors import UnavailableError, ZschedError
from ..models import Notification
from ..settings import Settings
from . import dashboard
from .api import Api
from .auth import TOKEN_PREFIX
from .errors import ApiError, handle
from .gateway import Gateway
from .gateway.endpoint import Shortcut
from .liveness import Liveness
from .messaging import MessagingApi
from .metrics import Metrics

log = logging.getLogger("zsched.server")

Service = Callable[[Starlette], AbstractAsyncContextManager[None]]
"""Something started after the scheduler and stopped before it (the WebSocket gateway's listener)."""

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


def _each(*observers: Observer) -> Observer:
    """One worker observer that calls each of ``observers``."""

    def observe(kind: str, notification: Notification, late_ms: float) -> None:
        for observer in observers:
            observer(kind, notification, late_ms)

    return observe


def connect(settings: Settings) -> AsyncScheduler:
    """An asyncio scheduler with bounded socket timeouts, so a hung Redis becomes a 503, not a hang."""
    server = settings.server()
    cluster = settings.clustered(server)
    if cluster or settings.redis.redis_sentinels:
        # A cluster client keeps a pool per node (each up to pool_size); Sentinel's master pool is its own.
        pool_size = settings.redis.pool_size
        connection = settings.connect(server, for_asyncio=True, max_connections=pool_size, cluster=cluster)
        return AsyncScheduler(connection, core=settings.core(cluster=cluster), server=server)
    # A burst (every socket acking at once) can want more connections than the pool holds: wait up to
    # 5 s for one to come free rather than fail the request, or the socket, with MaxConnectionsError.
    # A pool built by hand gets no retry policy of its own: without this one, every connection pooled before a
    # Redis restart would fail its next request (503) instead of reconnecting.
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.url(server),
        max_connections=settings.redis.pool_size,
        timeout=5,
        **settings.connection_options(for_asyncio=True),  # the timeouts and retry policy of every connection
    )
    connection = aioredis.Redis.from_pool(pool)
    return AsyncScheduler(connection, core=settings.core(), server=server)


SHUTDOWN_STEP_S = 10.0
"""How long one step of a shutdown may take: a close that hangs (a connection stuck mid-read) must not hold the
process, and a lifespan that never ends, for ever. It is logged as an error, naming the step."""


async def _bounded(stop: Callable[[], Awaitable[object]], what: str) -> None:
    """Await ``stop()`` for at most ``SHUTDOWN_STEP_S``; one that takes longer is abandoned and logged."""
    try:
        await asyncio.wait_for(stop(), SHUTDOWN_STEP_S)
    except TimeoutError:
        log.error("shutdown: %s took over %.0f s; abandoned", what, SHUTDOWN_STEP_S)


def create_app(
    settings: Settings | None = None,
    *,
    run_worker: bool = True,
    scheduler: AsyncScheduler | None = None,
    delivery: Router | Delivery | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    services: Sequence[Service] = (),
    websocket: bool = True,
    on_fatal: Callable[[str], None] | None = None,
) -> Starlette:
    """The app. Its lifespan connects (or uses ``scheduler``, which the caller then closes), starts the
    worker unless ``run_worker`` is False, then enters ``services``; shutdown runs in reverse.

    The worker delivers through ``delivery``: by default the router of every channel the settings enable
    (``zsched.delivery.build_router``). A ``Router`` given here decides the channels instead, and the API
    accepts exactly its channel names; any other ``Delivery`` serves the settings' default channels.

    ``app.state`` carries ``settings``, ``scheduler``, ``tokens`` and ``metrics`` for extra routes, and
    ``gateway`` when ``websocket`` is True (the default): the WebSocket gateway at ``/ws``, and ``liveness``:
    if the worker or the gateway's pub/sub reader dies, ``/readyz`` answers 503 and ``on_fatal`` is called
    (by default the process SIGTERMs itself; ``zsched serve`` then exits 1).
    """
    settings = settings or Settings.from_env()
    metrics = Metrics()
    if delivery is not None and not isinstance(delivery, Router):
        delivery = Router(dict.fromkeys(settings.delivery.channels, delivery), default=settings.delivery.channels)
    channels = delivery.names if delivery is not None else enabled_channels(settings)
    api = Api(settings.redis.prefix, metrics, settings.api, channels=channels)
    liveness = Liveness(on_fatal) if on_fatal is not None else Liveness()
    api.liveness = liveness

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redact_server_logs()
        zs = scheduler if scheduler is not None else await asyncio.to_thread(connect, settings)
        with contextlib.suppress(UnavailableError):  # Redis down at start: answered 503 until it is back
            await zs.ensure_layout()  # a process whose partition count disagrees with the keyspace's won't start
        app.state.scheduler = zs
        api.attach(zs)
        worker: Worker | None = None
        tally = Tally()  # the worker's outcomes, added to the minute's figures in Redis at each heartbeat
        task: asyncio.Task[None] | None = None
        router: Router | None = None  # built here, so closed here
        if run_worker:
            chosen = delivery
            if chosen is None:
                chosen = router = build_router(settings, zs.redis, zs.core.keys)
            worker = build_worker(settings, zs, chosen, observer=_each(metrics.observe, tally.observe))
            task = asyncio.create_task(worker.run(), name="zsched-worker")
            liveness.watch("worker", task)
        try:
            async with contextlib.AsyncExitStack() as stack:
                if websocket:
                    options = msgspec.structs.asdict(settings.gateway)  # its fields are Gateway's keywords
                    gateway = Gateway(zs.redis, zs.core.keys, api.tokens, failures=api.failures, **options)
                    await gateway.start()
                    stack.push_async_callback(_bounded, gateway.stop, "the gateway's stop")
                    app.state.gateway = gateway
                    for name, background in gateway.background_tasks().items():
                        liveness.watch(name, background)
                if worker is not None or websocket:  # every worker and gateway beats (zsched workers lists them)
                    gateway_ = app.state.gateway if websocket else None
                    heartbeat = Heartbeat(
                        zs,
                        "serve" if worker is not None and websocket else "worker" if worker is not None else "gateway",
                        in_flight=(lambda: worker.in_flight) if worker is not None else (lambda: 0),
                        sockets=(lambda: gateway_.connections) if gateway_ is not None else None,
                        recipients=(lambda: gateway_.sockets_by_recipient) if gateway_ is not None else None,
                        every_ms=round(settings.worker.beat_every_s * 1000),
                        tally=tally if worker is not None else None,
                        partitions=worker.partitions if worker is not None else None,
                    )
                    if worker is not None:
                        worker.on_partitions = heartbeat.nudge  # its listing shows what it owns once that changes
                    heartbeat.start()
                    stack.push_async_callback(_bounded, heartbeat.stop, "the heartbeat's stop")
                for service in services:
                    await stack.enter_async_context(service(app))
                # Pushed last, so run first when the stack unwinds, however it unwinds: the gateway's reader is
                # cancelled by a shutdown, not dead.
                stack.callback(setattr, liveness, "stopping", True)
                yield
        finally:
            liveness.stopping = True  # startup failed before the stack got that far, or the worker stops now
            if worker is not None and task is not None:
                worker.should_exit = True  # the batch in flight is finished, then run() returns
                stop_s = settings.worker.stop_timeout_s
                try:
                    await asyncio.wait_for(task, stop_s)
                except TimeoutError:
                    log.error("worker did not stop within %.0f s; cancelled", stop_s)
                except Exception:  # it died earlier, and liveness reported it when it did
                    pass
            api.detach()
            if router is not None:
                await _bounded(router.aclose, "closing the channels")
            if scheduler is None:
                await _bounded(zs.close, "closing the Redis connection")

    app = Starlette(
        routes=[*api.routes(), *MessagingApi(api).routes(), *dashboard.routes(api), *extra_routes],
        middleware=[Middleware(Shortcut, path="/ws")] if websocket else [],  # /ws: the gateway
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
    app.state.liveness = liveness
    return app
