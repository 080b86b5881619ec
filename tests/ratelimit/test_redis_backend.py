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
    assert 60_000 < ttl <= 62_000  # one window after the end of the lease (1 s), and a second


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


async def test_leases_admit_without_redis_and_decide_exactly_as_one_by_one(redis_backend, clock):
    """Hits that arrive together are admitted from leases (a few script calls for hundreds of hits), and
    every decision (admitted, remaining, msLeft, reset) equals the per-request sliding log's, computed on
    the memory backend as reference, hit after hit in arrival order."""
    from herewith.ratelimit import MemoryBackend

    leased = RateLimiter(redis_backend, window_seconds=60, clock=clock)
    reference = RateLimiter(MemoryBackend(), window_seconds=60, clock=clock)
    offered = [("organization:a", (1, 2, 3)[i % 3]) for i in range(200)] + [("organization:b", 3)] * 12
    got, expected = [], []
    for step in range(3):  # a burst, then the same later in the window, then after the window moved
        clock.advance((0, 20, 45)[step])
        got += await asyncio.gather(*(leased.hit(key, cost, 300) for key, cost in offered))
        expected += [await reference.hit(key, cost, 300) for key, cost in offered]
    assert [(d.allowed, d.remaining, d.retry_after_ms, d.reset) for d in got] == [
        (d.allowed, d.remaining, d.retry_after_ms, d.reset) for d in expected
    ]
    assert sum(1 for d in got if d.allowed) > 200 and sum(1 for d in got if not d.allowed) > 100
    # leases of up to a tenth of the budget: far fewer round trips than hits (the refused ones each ask)
    refused = sum(1 for d in got if not d.allowed)
    assert redis_backend.script_calls - refused < 40, (redis_backend.script_calls, refused)


async def test_unused_lease_points_go_back_at_the_end_of_the_lease(redis_backend):
    """A process that stops sending keeps its unused reserved points from the others only until its lease
    ends (a twentieth of a 2 s window here); then another process can use all but what was admitted."""
    other = RedisBackend(aioredis.Redis.from_url(REDIS_URL), prefix=redis_backend.prefix)
    first = RateLimiter(redis_backend, window_seconds=2)  # production clock: Redis TIME
    second = RateLimiter(other, window_seconds=2)
    try:
        admitted = 0
        for _ in range(12):
            admitted += (await first.hit("organization:g", 1, 100)).allowed
        assert admitted == 12 and redis_backend._leases["organization:g"].left > 0  # points held in reserve
        await asyncio.sleep(0.3)  # past the 0.1 s lease and its settling timer
        assert "organization:g" not in redis_backend._leases
        got = 0
        while (await second.hit("organization:g", 1, 100)).allowed:
            got += 1
        assert got == 100 - 12
    finally:
        await other.aclose()
        await other.client.aclose()


async def test_aclose_gives_unused_points_back(redis_backend):
    other = RedisBackend(aioredis.Redis.from_url(REDIS_URL), prefix=redis_backend.prefix)
    first = RateLimiter(redis_backend, window_seconds=60)
    for _ in range(8):
        assert (await first.hit("organization:c", 1, 200)).allowed
    assert redis_backend._leases["organization:c"].left > 0  # points held in reserve
    await redis_backend.aclose()  # a server shutting down
    second = RateLimiter(other, window_seconds=60)
    try:
        got = 0
        while (await second.hit("organization:c", 1, 200)).allowed:
            got += 1
        assert got == 200 - 8
    finally:
        await other.client.aclose()
