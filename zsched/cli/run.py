"""``zsched serve`` and ``zsched worker``: the long-running processes, and the hints they print at start."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import shutil
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis

from ..delivery import build_router, build_worker
from ..delivery.heartbeat import Heartbeat
from ..engine.minutes import Tally
from ..errors import UnavailableError
from ..settings import Settings
from .logs import LEVELS, log_format

if TYPE_CHECKING:
    from starlette.applications import Starlette

log = logging.getLogger("zsched.server")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Register ``serve`` and ``worker``."""
    for name in ("serve", "worker"):
        cmd = sub.add_parser(
            name,
            parents=[common],
            help=(
                "run zsched: the HTTP API and the worker delivering due notifications, in one process"
                if name == "serve"
                else "run only the worker loop (claim -> deliver -> ack/retry)"
            ),
        )
        cmd.add_argument("--batch", type=int, help="most notifications claimed per call (default 100)")
        cmd.add_argument("--lease-ms", type=int, help="how long a claim is owned before reap (default 30000)")
        cmd.add_argument(
            "--log-level",
            choices=LEVELS,
            help="least severe log line shown (default info; -v: debug); ZSCHED_LOG_FORMAT=json logs JSON lines",
        )
        if name == "serve":
            cmd.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
            cmd.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
            cmd.add_argument("--no-worker", action="store_true", help="run the API alone, without the worker")
            cmd.add_argument("--rate-per-s", type=float, help="API requests per second per token (default 10)")
            cmd.add_argument("--rate-burst", type=int, help="API requests a token may burst (default 50)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``serve`` or ``worker`` until a signal stops it."""
    if args.command == "serve":
        missing = _no_websocket_library()
        if missing:
            print(f"zsched: error: {missing}", file=sys.stderr)
            return 1
        check_eviction(settings)
        return _serve(settings, args.host, args.port, run_worker=not args.no_worker)
    check_eviction(settings)
    asyncio.run(_work(settings, announce=True))
    return 0


def check_eviction(settings: Settings) -> None:
    """Warn, in one log line, when Redis may evict zsched's keys, or when CONFIG GET may not ask it."""
    if settings.redis.redis_url is None:
        return  # the embedded server runs with Valkey's default, noeviction
    r = redis.Redis.from_url(str(settings.redis.redis_url), socket_timeout=2, socket_connect_timeout=2)
    try:
        policy = str(r.config_get("maxmemory-policy").get("maxmemory-policy", "?"))
    except redis.ResponseError as exc:  # managed services and ACL users often may not run CONFIG
        log.warning(
            "could not read maxmemory-policy (%s); make sure it is noeviction, or Redis may drop schedules "
            "when memory runs out (docs/deploy.md)",
            " ".join(str(exc).split()),
        )
        return
    except redis.RedisError:
        return  # down or unreachable: the worker waits it out, the API answers 503, each says so
    finally:
        r.close()
    if policy != "noeviction":
        log.warning(
            "maxmemory-policy is %s, not noeviction: when memory runs out Redis may delete pending "
            "notifications; CONFIG SET maxmemory-policy noeviction (docs/deploy.md)",
            policy,
        )


async def _work(settings: Settings, announce: bool) -> None:
    scheduler = settings.async_scheduler()
    delivery = build_router(settings, scheduler.redis, scheduler.core.keys)
    tally = Tally()  # what it delivered, added to the minute's figures in Redis at each heartbeat
    worker = build_worker(settings, scheduler, delivery, observer=tally.observe)
    with contextlib.suppress(UnavailableError):  # Redis down: the worker waits it out, and checks on its first call
        await scheduler.ensure_layout()  # refuse to start with a partition count the keyspace disagrees with
    worker.install_signal_handlers()
    if announce:
        where = f"the embedded server in {scheduler.server.data_dir}" if scheduler.server else settings.where()
        print(f"zsched worker running on {where} (prefix {settings.redis.prefix!r}); Ctrl-C stops it.", flush=True)
        _hints(settings, scheduler.server.port if scheduler.server else None, http=None)
    every_ms = round(settings.worker.beat_every_s * 1000)
    heartbeat = Heartbeat(
        scheduler,
        "worker",
        every_ms=every_ms,
        in_flight=lambda: worker.in_flight,
        tally=tally,
        partitions=worker.partitions,
    )
    worker.on_partitions = heartbeat.nudge  # a worker's listing shows what it owns as soon as that changes
    heartbeat.start()
    try:
        await worker.run()
    finally:
        await heartbeat.stop()
        await delivery.aclose()
        await scheduler.close()


def _no_websocket_library() -> str | None:
    """Why uvicorn could not accept a WebSocket here, or None: without a library it answers every upgrade 426."""
    for name in ("websockets", "wsproto"):  # what uvicorn's ws="auto" tries, in its order
        try:
            importlib.import_module(name)
            return None
        except ImportError:
            continue
    return (
        "no WebSocket library: uvicorn would answer every /ws upgrade with 426; "
        "pip install websockets (a zsched dependency: reinstall zsched)"
    )


def _serve(settings: Settings, host: str, port: int, run_worker: bool) -> int:
    from ..web.app import create_app

    server = settings.server()  # owned here, so it outlives the app and stops (AOF flushed) after it
    try:
        if server is not None:
            settings = settings.replace(redis_url=server.url)
        # Checked here, not only in the app's startup, so a wrong partition count or tags, or a cluster taken
        # for a single server (MOVED), is one line on stderr instead of uvicorn's traceback.
        with settings.scheduler() as zs, contextlib.suppress(UnavailableError):  # down: answered 503 until back
            zs.ensure_layout()
        app = create_app(settings, run_worker=run_worker)
        where = f"the embedded server in {server.data_dir}" if server is not None else settings.where()
        print(
            f"zsched serving http://{host}:{port} (API + WebSocket{' + worker' if run_worker else ''}) on "
            f"{where}, prefix {settings.redis.prefix!r}; docs at http://{host}:{port}/docs. Ctrl-C stops it.",
            flush=True,
        )
        _hints(settings, server.port if server is not None else None, http=f"{host}:{port}")
        return serve_app(app, host, port)
    finally:
        if server is not None:
            server.stop()


def websocket_protocol() -> type[asyncio.Protocol] | str:
    """The WebSocket protocol ``serve`` runs: zsched's lean one (``zsched.web.gateway.protocol``), or uvicorn's own
    choice (``"auto"``) where its base class cannot be imported (no ``websockets`` library)."""
    try:
        from ..web.gateway.protocol import lean_protocol
    except ImportError:
        return "auto"
    return lean_protocol()


def serve_app(app: Starlette, host: str, port: int) -> int:
    """Run ``app`` under uvicorn until a signal, or until a background task dies: then the exit status is 1."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    def exit_status() -> int:
        return 1 if app.state.liveness.fatal is not None else 0

    # uvicorn re-raises the signal that stopped it once shutdown is done; exiting through SystemExit instead of
    # dying of SIGTERM lets the caller stop the embedded server cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(exit_status()))
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
    # JSON: uvicorn's records go to the root handler too, so every line is one object
    config: dict[str, Any] | None = None if log_format() == "json" else LOGGING_CONFIG
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=level if level in LEVELS else "info",
            log_config=config,
            lifespan="on",
            ws=websocket_protocol(),  # keeps less per socket than uvicorn's default, behaving the same
            ws_per_message_deflate=False,
        )
    return exit_status()


def _hints(settings: Settings, port: int | None, http: str | None) -> None:
    """What to type next: print it where the user is looking when zsched starts."""
    command = "zsched" if shutil.which("zsched") else str(Path(sys.executable).parent / "zsched")
    lines = [
        f'schedule:  {command} schedule --to alice --title Hello --message "first one" --in 2s',
        f"status:    {command} status 1",
    ]
    if http is not None:
        lines += [
            f"token:     TOKEN=$({command} token create --user alice | tail -n 1)",
            f'listen:    {Path(sys.executable)} -m websockets "ws://{http}/ws?token=$TOKEN"',
        ]
    if port is not None:
        lines.append(
            f"inspect:   {command} redis-cli --data-dir {settings.redis.data_dir} "
            f"ZRANGE '{settings.redis.prefix}:{{p0}}:due' 0 -1 WITHSCORES"
        )
    print("\n".join(f"  {line}" for line in lines), flush=True)
