"""Redis backend: the same sliding log, shared by every server process, in one atomic Lua script.

Per key two Redis keys (one hash tag, so they live on one cluster slot):

- ``<prefix>{<key>}:log`` a sorted set, score = admission time in microseconds, member = ``"<cost>:<id>"``
  (the hits admitted by one script call share a time and are logged as one entry with their summed cost);
- ``<prefix>{<key>}:used`` the running sum of the costs in the log.

The script (:data:`SLIDING_LOG_LUA`) drops the entries that left the window (subtracting their cost from
the running sum, so a call is O(log n) amortised, not O(budget)), admits and logs the request if it fits,
and otherwise walks the oldest entries to compute how long until it would fit. Both keys expire one
window after the newest entry.

Clock: when the limiter passes ``now_us`` (tests, with a controllable clock) the script uses it; in
production it passes nothing and the script reads the Redis server's ``TIME``, so processes on several
hosts share one clock. (Redis >= 5 replicates scripts by effects, so ``TIME`` before a write is allowed.)

Round trips: the hits that arrive in one event-loop tick are sent together (aiodataloader's batching,
without caching): one script call per key carries all of that key's hits, which the script applies one
after another in arrival order, so a busy organization costs one round trip per tick, not one per request.

Unreachable Redis: every connection or timeout error becomes
:class:`~herewith.ratelimit.core.BackendUnavailable`; after one, the backend does not try Redis again for
``retry_interval`` seconds (so a down Redis costs one failed connect per interval, not one per request).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import NamedTuple
from itertools import count

import redis.asyncio as aioredis
import redis.exceptions
import structlog
from aiodataloader import DataLoader

from .core import BackendUnavailable, RawDecision

log = structlog.get_logger(__name__)

SLIDING_LOG_LUA = """
-- KEYS[1] log (zset: score t_us, member "<cost>:<id>"), KEYS[2] running sum of costs in the log
-- ARGV: now_us ('' = server TIME), window_us, limit, then one (cost, member id) pair per hit, in order
-- returns, per hit: allowed 0|1, used after the hit, now_us, reset_us, wait_us (5 numbers each)
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local used = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  used = tonumber(redis.call('GET', KEYS[2]) or '0')
end
local cutoff = now - window
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
local purged = false
if #expired > 0 then
  for i = 1, #expired do
    used = used - tonumber(string.match(expired[i], '^(%d+):'))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  if used < 0 then used = 0 end
  purged = true
end
local ttl_ms = math.floor(window / 1000) + 1000
local admitted = false
local out = {}
-- Hits admitted in this call share one timestamp, so they are logged as one entry carrying their summed
-- cost (same window arithmetic, one ZADD per call instead of one per hit).
local pending, pending_id = 0, nil
local function log_pending()
  if pending > 0 then
    redis.call('ZADD', KEYS[1], now, pending .. ':' .. pending_id)
    pending, pending_id = 0, nil
  end
end
for h = 4, #ARGV, 2 do
  local cost = tonumber(ARGV[h])
  if used + cost <= limit then
    used = used + cost
    pending = pending + cost
    pending_id = pending_id or ARGV[h + 1]
    admitted = true
    for _, v in ipairs({1, used, now, now + window, 0}) do out[#out + 1] = v end
  else
    log_pending()
    local reset = now
    local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
    if #newest > 0 then reset = tonumber(newest[2]) + window end
    local wait = window
    if cost <= limit then
      local need = used + cost - limit
      local freed = 0
      local start = 0
      local done = false
      while not done do
        local batch = redis.call('ZRANGE', KEYS[1], start, start + 99, 'WITHSCORES')
        if #batch == 0 then break end
        for i = 1, #batch, 2 do
          freed = freed + tonumber(string.match(batch[i], '^(%d+):'))
          if freed >= need then
            wait = tonumber(batch[i + 1]) + window - now
            done = true
            break
          end
        end
        start = start + 100
      end
    end
    for _, v in ipairs({0, used, now, reset, wait}) do out[#out + 1] = v end
  end
end
log_pending()
if admitted then
  redis.call('SET', KEYS[2], used, 'PX', ttl_ms)
  redis.call('PEXPIRE', KEYS[1], ttl_ms)
elseif purged then
  redis.call('SET', KEYS[2], used, 'KEEPTTL')
end
return out
"""

class _Hit(NamedTuple):
    key: str
    cost: int
    limit: int
    window_us: int
    now_us: int | None
    member: str


_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class RedisBackend:
    """Sliding logs in Redis. ``client``: a ``redis.asyncio.Redis`` (or use :meth:`from_url`);
    ``prefix``: namespace of the keys (tests use a unique one each); ``retry_interval``: seconds to skip
    Redis after a connection failure."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "herewith:rl:", retry_interval: float = 1.0,
                 owns_client: bool = False) -> None:
        self.client = client
        self.prefix = prefix
        self.retry_interval = retry_interval
        self._owns_client = owns_client
        self._script = client.register_script(SLIDING_LOG_LUA)
        self._ids = count()
        self._id_prefix = f"{os.getpid():x}.{os.urandom(4).hex()}."
        self._down_until = 0.0
        self._loader: DataLoader[_Hit, RawDecision] | None = None

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "herewith:rl:", connect_timeout: float = 0.5,
                 timeout: float = 1.0, retry_interval: float = 1.0) -> "RedisBackend":
        """A backend with its own connection pool to ``url`` (short timeouts: the limiter must not stall
        the API when Redis is away)."""
        client = aioredis.Redis.from_url(url, socket_connect_timeout=connect_timeout, socket_timeout=timeout)
        return cls(client, prefix=prefix, retry_interval=retry_interval, owns_client=True)

    def _keys(self, key: str) -> list[str]:
        base = f"{self.prefix}{{{key}}}"
        return [base + ":log", base + ":used"]

    async def hit(self, key: str, cost: int, limit: int, window_us: int, now_us: int | None) -> RawDecision:
        if self._down_until and time.monotonic() < self._down_until:
            raise BackendUnavailable("redis unavailable (waiting before retrying)")
        loop = asyncio.get_running_loop()
        if self._loader is None or self._loader.loop is not loop:
            self._loader = DataLoader(self._hit_batch, cache=False, max_batch_size=500, loop=loop)
        member = f"{self._id_prefix}{next(self._ids)}"
        return await self._loader.load(_Hit(key, cost, limit, window_us, now_us, member))

    async def _hit_batch(self, hits: list[_Hit]) -> list[RawDecision | Exception]:
        """One script call per (key, limit, window, clock) among the hits of this tick, all in flight at
        once; the script applies a key's hits one after another, in arrival order."""
        groups: dict[tuple[str, int, int, int | None], list[int]] = {}
        for i, h in enumerate(hits):
            groups.setdefault((h.key, h.limit, h.window_us, h.now_us), []).append(i)
        out: list[RawDecision | Exception] = [BackendUnavailable("no answer")] * len(hits)

        async def run(group: tuple[str, int, int, int | None], indexes: list[int]) -> None:
            key, limit, window_us, now_us = group
            args: list[object] = ["" if now_us is None else now_us, window_us, limit]
            for i in indexes:
                args += [hits[i].cost, hits[i].member]
            res = [int(x) for x in await self._script(keys=self._keys(key), args=args)]
            for n, i in enumerate(indexes):
                allowed, used, now, reset, wait = res[5 * n:5 * n + 5]
                out[i] = RawDecision(bool(allowed), used, now, reset, wait)

        try:
            await asyncio.gather(*(run(g, idx) for g, idx in groups.items()))
        except _ERRORS as exc:
            self._down_until = time.monotonic() + self.retry_interval
            log.warning("ratelimit_redis_unavailable", error=f"{type(exc).__name__}: {exc}",
                        retry_in_seconds=self.retry_interval)
            return [BackendUnavailable(str(exc))] * len(hits)
        if self._down_until:
            self._down_until = 0.0
            log.info("ratelimit_redis_recovered")
        return out

    async def reset(self, key: str) -> None:
        await self.client.delete(*self._keys(key))

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()
