"""The token bucket script on a real server, with a pinned clock: burst, refill, per-key, header contract."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import redis.asyncio as aioredis

from tests.conftest import ManualClock
from tests.integration.http_support import TestClient, Tokens, tokens
from zsched.engine.scripts import lua_dir
from zsched.settings import Settings
from zsched.web.app import create_app
from zsched.web.ratelimit import RateLimiter

__all__ = ["tokens"]  # a fixture used by name


async def test_burst_then_refill(redis_url: str, prefix: str) -> None:
    clock = ManualClock(1_000_000)
    r = aioredis.Redis.from_url(redis_url)
    try:
        limiter = RateLimiter(r, prefix, rate_per_s=2.0, burst=3, clock=clock)
        verdicts = [await limiter.take("a") for _ in range(4)]
        assert [v.allowed for v in verdicts] == [True, True, True, False]
        assert [v.remaining for v in verdicts[:3]] == [2, 1, 0] and verdicts[3].retry_after_ms == 500
        assert (await limiter.take("b")).allowed  # buckets are per token
        clock.advance(499)
        assert not (await limiter.take("a")).allowed
        clock.advance(1)
        assert (await limiter.take("a")).allowed
        clock.advance(3_600_000)  # a long pause refills to the burst, not beyond
        assert [(await limiter.take("a")).allowed for _ in range(4)] == [True, True, True, False]
        clock.advance(-10_000)  # a clock that went back does not drain or refill
        assert not (await limiter.take("a")).allowed
        ttl = await r.pttl(f"{prefix}:{{rate:a}}:bucket")
        assert 0 < ttl <= 2500
    finally:
        await r.aclose()


def test_header_names_every_key_and_arg() -> None:
    source = (lua_dir() / "rate_limit.lua").read_text()
    header = [line for line in source.splitlines() if line.startswith("--")]
    declared_keys = {int(n) for n in re.findall(r"^-- KEYS\[(\d+)\]", "\n".join(header), re.M)}
    declared_args = {int(n) for n in re.findall(r"^-- ARGV\[(\d+)\]", "\n".join(header), re.M)}
    assert {int(n) for n in re.findall(r"KEYS\[(\d+)\]", source)} == declared_keys == {1, 2}
    assert {int(n) for n in re.findall(r"ARGV\[(\d+)\]", source)} == declared_args == {1, 2, 3, 4, 5}
    assert any(line.startswith("-- Returns:") for line in header)


async def test_cost_zero_only_looks(redis_url: str, prefix: str) -> None:
    """The failed-authentication lock asks first (cost 0): that writes nothing and says when one is left."""
    clock = ManualClock(1_000_000)
    r = aioredis.Redis.from_url(redis_url)
    try:
        limiter = RateLimiter(r, prefix, rate_per_s=1.0, burst=2, clock=clock)
        assert (await limiter.take("peek", cost=0)).allowed
        assert await r.exists(f"{prefix}:{{rate:peek}}:bucket") == 0
        await limiter.take("peek")
        await limiter.take("peek")
        looked = await limiter.take("peek", cost=0)
        assert not looked.allowed and looked.retry_after_ms == 1000
        clock.advance(1000)
        assert (await limiter.take("peek", cost=0)).remaining == 1
        assert (await limiter.take("peek")).allowed  # looking spent nothing
    finally:
        await r.aclose()


def test_parallel_bad_tokens_are_charged_atomically(redis_url: str, prefix: str, tokens: Tokens) -> None:
    """Twenty bad tokens at once from one address with a budget of three: exactly three get 401, the rest
    429. (Looking at the budget, then charging it, in two steps let parallel guesses all pass the look.)"""
    settings = Settings.of(
        redis_url=redis_url, prefix=prefix, rate_per_s=1000.0, rate_burst=1000, auth_fail_per_s=0.001, auth_fail_burst=3
    )
    with TestClient(create_app(settings, run_worker=False), client=("203.0.113.9", 4000)) as c:
        guess = {"Authorization": "Token zs_guess"}
        with ThreadPoolExecutor(20) as pool:
            codes = sorted(pool.map(lambda _: c.get("/api/notifications/", headers=guess).status_code, range(20)))
        assert codes == [401] * 3 + [429] * 17
        assert c.get("/api/notifications/", headers=tokens.headers("alice")).status_code == 200
