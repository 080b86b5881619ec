"""Redis backend: atomic under concurrency, server clock in production, fail open / closed when down."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

import pytest
import redis.asyncio as aioredis
from herewith.ratelimit import RateLimiter, RateLimiterUnavailable, RedisBackend
from herewith.ratelimit import redis_backend as redis_backend_module

REDIS_URL = "redis://127.0.0.1:6379/0"


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


async def test_concurrent_clients_share_one_budget_exactly(redis_backend):
    """Several independent connections hammering one key: exactly the budget is admitted."""
    others = [RedisBackend(aioredis.Redis.from_url(REDIS_URL), prefix=redis_backend.prefix) for _ in range(3)]
    limiters = [RateLimiter(b, window_seconds=60) for b in [redis_backend, *others]]
    try:
        async def worker(lim: RateLimiter) -> int:
            pts = 0
            for i in range(120):
                cost = (1, 2, 3)[i % 3]
                if (await lim.hit("organization:shared", cost, 250)).allowed:
                    pts += cost
            return pts

        admitted = await asyncio.gather(*(worker(lim) for lim in limiters for _ in range(2)))
        # 8 workers x 240 points offered, budget 250: the sum is 250 or a little under when the last
        # points left could only fit a cheaper request that never came.
        assert 247 <= sum(admitted) <= 250
    finally:
        for b in others:
            await b.client.aclose()


async def test_server_time_is_used_without_injected_clock(redis_backend):
    limiter = RateLimiter(redis_backend, window_seconds=60)  # clock=None -> Redis TIME
    d = await limiter.hit("organization:t", 1, 10)
    server_s, server_us = await redis_backend.client.time()
    assert d.allowed and d.remaining == 9
    assert abs(d.reset - (server_s + server_us / 1e6 + 60)) < 2


async def test_keys_expire_after_the_window(redis_backend):
    limiter = RateLimiter(redis_backend, window_seconds=60)
    await limiter.hit("organization:ttl", 1, 10)
    ttl = await redis_backend.client.pttl(f"{redis_backend.prefix}{{organization:ttl}}:log")
    assert 60_000 < ttl <= 61_000


class RecordingLog:
    """Stands in for the module's structlog logger (the app's logging setup caches loggers, so
    ``structlog.testing.capture_logs`` cannot see them once an app has been created in this process)."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def __getattr__(self, level: str):
        return lambda event, **kw: self.events.append({"event": event, "log_level": level, **kw})


async def test_fail_open_when_redis_is_unreachable(monkeypatch):
    rec = RecordingLog()
    monkeypatch.setattr(redis_backend_module, "log", rec)
    backend = RedisBackend.from_url(f"redis://127.0.0.1:{_closed_port()}/0", prefix=f"x{uuid.uuid4().hex}:")
    limiter = RateLimiter(backend, window_seconds=60, fail_open=True)
    try:
        t = time.perf_counter()
        d = await limiter.hit("organization:o", 3, 10)
        elapsed = time.perf_counter() - t
        assert d.allowed and d.degraded and d.limit == 10 and d.remaining == 10
        assert elapsed < 1.0
        assert [e["event"] for e in rec.events] == ["ratelimit_redis_unavailable"]
        assert rec.events[0]["log_level"] == "warning"
        # the next calls within retry_interval don't even try the connection
        for _ in range(100):
            assert (await limiter.hit("organization:o", 3, 10)).allowed
        assert len(rec.events) == 1
    finally:
        await limiter.aclose()


async def test_fail_closed_raises():
    backend = RedisBackend.from_url(f"redis://127.0.0.1:{_closed_port()}/0")
    limiter = RateLimiter(backend, window_seconds=60, fail_open=False)
    try:
        with pytest.raises(RateLimiterUnavailable):
            await limiter.hit("organization:o", 1, 10)
    finally:
        await limiter.aclose()


async def test_recovers_when_redis_comes_back(redis_backend):
    """After the retry interval the backend tries Redis again."""
    redis_backend.retry_interval = 0.05
    limiter = RateLimiter(redis_backend, window_seconds=60)
    redis_backend._down_until = time.monotonic() + 0.05  # as after a failure
    assert (await limiter.hit("organization:r", 1, 10)).degraded
    await asyncio.sleep(0.06)
    d = await limiter.hit("organization:r", 1, 10)
    assert d.allowed and not d.degraded and d.remaining == 9


async def test_hits_of_one_tick_go_in_one_call_and_match_one_by_one(redis_backend, clock):
    """Hits that arrive together are sent as one script call per key; the decisions are exactly those of
    the same hits made one after another (arrival order kept), on the memory backend as reference."""
    from herewith.ratelimit import MemoryBackend

    batched = RateLimiter(redis_backend, window_seconds=60, clock=clock)
    reference = RateLimiter(MemoryBackend(), window_seconds=60, clock=clock)
    calls = 0
    script = redis_backend._script

    async def counting(*args, **kwargs):
        nonlocal calls
        calls += 1
        return await script(*args, **kwargs)

    redis_backend._script = counting
    offered = [("organization:a", (1, 2, 3)[i % 3]) for i in range(40)] + [("organization:b", 3)] * 12
    decisions = await asyncio.gather(*(batched.hit(key, cost, 30) for key, cost in offered))
    expected = [await reference.hit(key, cost, 30) for key, cost in offered]
    assert calls == 2  # one per key, for 52 hits
    assert [(d.allowed, d.remaining, d.retry_after_ms, d.reset) for d in decisions] == [
        (d.allowed, d.remaining, d.retry_after_ms, d.reset) for d in expected
    ]
    assert sum(cost for (key, cost), d in zip(offered, decisions) if d.allowed and key.endswith("a")) == 30
