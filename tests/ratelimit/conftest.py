"""Fixtures for the rate limiter: both backends, a controllable clock, a unique Redis key prefix per test."""

from __future__ import annotations

import os
import uuid

import pytest
import redis.asyncio as aioredis

from herewith.ratelimit import ManualClock, MemoryBackend, RateLimiter, RedisBackend

REDIS_URL = os.environ.get("HEREWITH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# A fixed, round start so expected epoch values are easy to read.
T0 = 1_700_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


async def _redis_backend():
    client = aioredis.Redis.from_url(REDIS_URL)
    prefix = f"test:rl:{uuid.uuid4().hex}:"
    return RedisBackend(client, prefix=prefix)


async def _cleanup(backend: RedisBackend) -> None:
    keys = [k async for k in backend.client.scan_iter(match=backend.prefix + "*")]
    if keys:
        await backend.client.delete(*keys)
    await backend.client.aclose()


@pytest.fixture
async def redis_backend():
    backend = await _redis_backend()
    yield backend
    await _cleanup(backend)


@pytest.fixture(params=["memory", "redis"])
async def backend(request):
    if request.param == "memory":
        yield MemoryBackend()
        return
    backend = await _redis_backend()
    yield backend
    await _cleanup(backend)


@pytest.fixture
def limiter(backend, clock) -> RateLimiter:
    return RateLimiter(backend, window_seconds=60, clock=clock)
