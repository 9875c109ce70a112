"""A serving process whose worker dies does not linger half-alive: /readyz answers 503 with the reason, and
``zsched serve`` stops with exit status 1 (a supervisor restarts it)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette

from tests.integration.http_support import TestClient
from zsched import AsyncScheduler, Core, Keyspace
from zsched.engine.leases import Claimed
from zsched.settings import Settings
from zsched.web.app import create_app


class DyingScheduler(AsyncScheduler):
    """A scheduler whose claims raise what no worker handles: a bug, the kind of death to survive."""

    async def run(self, op: Any) -> Any:
        if getattr(op, "__qualname__", "").endswith("claim"):
            op.close()
            raise RuntimeError("a bug in the worker")
        return await super().run(op)


def test_a_dead_worker_makes_readyz_503_and_calls_on_fatal(redis_url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    reasons: list[str] = []
    zs = DyingScheduler(aioredis.Redis.from_url(redis_url), core=Core(Keyspace(prefix)))
    app = create_app(Settings.of(redis_url=redis_url, prefix=prefix), scheduler=zs, on_fatal=reasons.append)
    app_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def closing(app: Starlette) -> AsyncIterator[None]:
        async with app_lifespan(app):
            yield
        await zs.close()  # the caller's to close, on the loop its connections were made on (TestClient's)

    app.router.lifespan_context = closing
    with TestClient(app) as c:
        deadline = time.monotonic() + 10
        while not reasons:
            assert time.monotonic() < deadline, "the worker's death went unnoticed"
            time.sleep(0.02)
        r = c.get("/readyz")
        assert r.status_code == 503 and "the worker stopped: RuntimeError('a bug in the worker')" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200  # alive enough to say why it is not ready
    assert reasons == ["the worker stopped: RuntimeError('a bug in the worker')"]
    assert Claimed  # the type a real claim returns; DyingScheduler never gets that far


def test_serve_exits_1_when_its_worker_dies(redis_url: str, prefix: str, tmp_path: Any) -> None:
    script = textwrap.dedent(f"""
        import redis.asyncio as aioredis
        from tests.integration.test_liveness import DyingScheduler
        from zsched import Core, Keyspace
        from zsched.cli.run import serve_app
        from zsched.settings import Settings
        from zsched.web.app import create_app
        zs = DyingScheduler(aioredis.Redis.from_url({redis_url!r}), core=Core(Keyspace({prefix!r})))
        app = create_app(Settings.of(redis_url={redis_url!r}, prefix={prefix!r}), scheduler=zs)
        raise SystemExit(serve_app(app, "127.0.0.1", 0))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "the worker stopped: RuntimeError('a bug in the worker'); this process is no longer ready" in done.stderr
