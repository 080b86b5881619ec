"""Redis backend: one sliding log per key shared by every server process, which admits requests locally
against **leases** (reservations of the shared budget) so that most requests cost no Redis round trip.

Per key two Redis keys (one hash tag, so they live on one cluster slot):

- ``<prefix>{<key>}:log`` a sorted set, score = time in microseconds, member = ``"<cost>:<id>"``;
- ``<prefix>{<key>}:used`` the running sum of the costs in the log.

An entry stops counting once its score has left the window (``score <= now - window``).

**Leases.** To admit a request for a key, a process needs a lease on it: ``granted`` points reserved in
the log in one atomic script call (:data:`LEASE_LUA`) as an entry whose score is the lease's end,
``t0 + lease`` (``lease`` = ``min(1 s, window / 20)``). Until that end the process admits requests from
the lease's points without asking Redis; when the points run out or the end passes, the next request
*settles* the lease and asks for a new one in the same script call: the reservation entry is replaced by
one entry per admitted request at its own admission time, so the log then holds exactly what a per-request
sliding log would. A request that does not fit in what is free is refused by the script, with the exact
wait (``msLeft``).

Why this never admits more than the budget in any window, across processes: a lease's points count from
the moment it is granted until ``t0 + lease + window``, which covers every window that any of its
admissions (all within ``[t0, t0 + lease]``) can fall into. Take any window and, among the leases with an
admission in it, the one granted last: when it was granted, the script saw every other such lease still
counted (in full, or settled to its admissions), and it granted only what fit in the budget. A process
that holds unused lease points keeps them from the others for at most ``lease`` (1 s), so the budget is
nearly all usable ("not much less"); one process alone gets exactly the per-request sliding log's
decisions (it settles its lease before asking for more, so Redis then sees exactly its admissions).

Lease size: twice the points used from the previous lease (the rate of the last second), at least the
request's cost, at most a tenth of the budget, and never more than is free. A lease no request uses is
settled by a timer at its end, which gives its unused points back.

Headers: ``remaining`` of a locally admitted request is computed from what the script returned (the points
in the window at ``t0``, and the entries that leave the window during the lease), so it is exact for one
process; with several, it does not see the other processes' admissions since ``t0``.

Clock: with ``now_us`` from the limiter (tests, with a controllable clock) every time is that clock's. In
production the script reads the Redis server's ``TIME`` (so processes on several hosts share one clock),
and the process tells time during a lease as ``t0`` plus the monotonic time elapsed since it sent the
request for the lease: never earlier than Redis's clock, so admissions are never placed before the lease
began and the lease is never used past its end. Admission times are then rounded up to the millisecond,
so a busy key logs at most 1,000 entries a second.

Unreachable Redis: every connection or timeout error becomes
:class:`~herewith.ratelimit.core.BackendUnavailable`; after one, the backend does not try Redis again for
``retry_interval`` seconds (so a down Redis costs one failed connect per interval, not one per request).
A lease already held keeps admitting until its end.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from itertools import count

import redis.asyncio as aioredis
import redis.exceptions
import structlog

from .core import BackendUnavailable, RawDecision

log = structlog.get_logger(__name__)

LEASE_LUA = """
-- KEYS[1] log (zset: score t_us, member "<cost>:<id>"), KEYS[2] running sum of the costs in the log
-- ARGV[1] now_us ('' = server TIME), [2] window_us, [3] limit, [4] cost (0: settle only),
-- [5] points wanted, [6] lease_us, [7] new lease id, [8] old lease id ('' none), [9] old lease's
-- reserved points, then one (t_us, cost) pair per request admitted from the old lease
-- returns: granted (0 = refused), used after the call, now_us, reset_us, wait_us, then (score, cost) pairs
-- of the entries that leave the window during the new lease (only when granted)
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local want = tonumber(ARGV[5])
local lease = tonumber(ARGV[6])
local used = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  used = tonumber(redis.call('GET', KEYS[2]) or '0')
end
local cutoff = now - window
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
for i = 1, #expired do
  used = used - tonumber(string.match(expired[i], '^(%d+):'))
end
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
end
-- settle the old lease: its reservation out, each admission in at its own time (if still in the window)
if ARGV[8] ~= '' then
  if redis.call('ZREM', KEYS[1], ARGV[9] .. ':' .. ARGV[8]) == 1 then
    used = used - tonumber(ARGV[9])
  end
  local n = 0
  for h = 10, #ARGV, 2 do
    local t = tonumber(ARGV[h])
    if t > cutoff then
      n = n + 1
      redis.call('ZADD', KEYS[1], t, ARGV[h + 1] .. ':' .. ARGV[8] .. '.' .. n)
      used = used + tonumber(ARGV[h + 1])
    end
  end
end
if used < 0 then used = 0 end
local out
if cost > 0 and used + cost <= limit then
  local granted = math.min(math.max(want, cost), limit - used)
  redis.call('ZADD', KEYS[1], now + lease, granted .. ':' .. ARGV[7])
  used = used + granted
  out = {granted, used, now, now + window, 0}
  local leaving = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. cutoff, now + lease - window, 'WITHSCORES')
  for i = 1, #leaving, 2 do
    out[#out + 1] = leaving[i + 1]
    out[#out + 1] = tonumber(string.match(leaving[i], '^(%d+):'))
  end
elseif cost > 0 then
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
  out = {0, used, now, reset, wait}
else
  out = {0, used, now, now, 0}
end
if redis.call('ZCARD', KEYS[1]) > 0 then
  local ttl_ms = math.floor((window + lease) / 1000) + 1000
  redis.call('SET', KEYS[2], used, 'PX', ttl_ms)
  redis.call('PEXPIRE', KEYS[1], ttl_ms)
else
  redis.call('DEL', KEYS[1], KEYS[2])
end
return out
"""

_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


def lease_us_for(window_us: int) -> int:
    """How long a lease lasts: 1 s, or a twentieth of the window when that is shorter (tests' short windows)."""
    return max(1, min(1_000_000, window_us // 20))


class _Lease:
    """Points of one key reserved for this process, and what it admitted from them."""

    __slots__ = ("id", "limit", "window_us", "start_us", "end_us", "granted", "left", "base_used",
                 "admitted_t", "admitted_c", "leaving", "next_leaving", "clock_base_us", "timer")

    def __init__(self, lease_id: str, limit: int, window_us: int, start_us: int, end_us: int, granted: int,
                 used_before: int, leaving: list[tuple[int, int]], clock_base_us: int | None) -> None:
        self.id = lease_id
        self.limit = limit
        self.window_us = window_us
        self.start_us = start_us
        self.end_us = end_us  # the reservation's score: no admission after it
        self.granted = granted
        self.left = granted
        self.base_used = used_before  # points in the window at start_us, this reservation not counted
        # times and points admitted, oldest first, one per distinct time (plain ints: nothing for the GC)
        self.admitted_t: list[int] = []
        self.admitted_c: list[int] = []
        self.leaving = leaving  # (score, cost) of entries that leave the window during the lease, oldest first
        self.next_leaving = 0
        self.clock_base_us = clock_base_us  # Redis time minus monotonic time (production clock only)
        self.timer: asyncio.TimerHandle | None = None

    def now(self, now_us: int | None) -> int:
        """The time of a hit now: the injected clock's, or Redis's estimated (rounded up to the ms)."""
        if now_us is not None:
            return now_us
        t = time.monotonic_ns() // 1000 + (self.clock_base_us or 0)
        return -(-t // 1000) * 1000

    def used_at(self, now_us: int) -> int:
        """Points in the window at ``now_us`` as this process knows them (see the module doc)."""
        cutoff = now_us - self.window_us
        while self.next_leaving < len(self.leaving) and self.leaving[self.next_leaving][0] <= cutoff:
            self.base_used -= self.leaving[self.next_leaving][1]
            self.next_leaving += 1
        return self.base_used + self.granted - self.left

    def settle(self) -> list[object]:
        """Close the lease (no more admissions from it) and return the script arguments that settle it:
        its id, its reserved points, then a (time, points) pair per admission."""
        self.end_us = -1  # before any time: _admit refuses from now on
        args: list[object] = [self.id, self.granted]
        for t, c in zip(self.admitted_t, self.admitted_c):
            args += [t, c]
        return args

    @property
    def used_points(self) -> int:
        return self.granted - self.left


class RedisBackend:
    """Sliding logs in Redis, admitted from leases. ``client``: a ``redis.asyncio.Redis`` (or use
    :meth:`from_url`); ``prefix``: namespace of the keys (tests use a unique one each); ``retry_interval``:
    seconds to skip Redis after a connection failure."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "herewith:rl:", retry_interval: float = 1.0,
                 owns_client: bool = False) -> None:
        self.client = client
        self.prefix = prefix
        self.retry_interval = retry_interval
        self._owns_client = owns_client
        self._script = client.register_script(LEASE_LUA)
        self._ids = count()
        self._id_prefix = f"{os.getpid():x}.{os.urandom(4).hex()}."
        self._down_until = 0.0
        self._leases: dict[str, _Lease] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.script_calls = 0  # Redis round trips made (for tests and benchmarks)

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

    def _admit(self, lease: _Lease, cost: int, now_us: int | None) -> RawDecision | None:
        """Admit from the lease without Redis, or None when it cannot (points or time ran out)."""
        t = lease.now(now_us)
        if lease.left < cost or t > lease.end_us or t < lease.start_us:
            return None
        lease.left -= cost
        if lease.admitted_t and lease.admitted_t[-1] == t:
            lease.admitted_c[-1] += cost
        else:
            lease.admitted_t.append(t)
            lease.admitted_c.append(cost)
        return RawDecision(True, lease.used_at(t), t, t + lease.window_us, 0)

    def try_hit(self, key: str, cost: int, limit: int, window_us: int, now_us: int | None) -> RawDecision | None:
        """Admit from this key's lease, or None when that takes Redis (no lease, or it ran out)."""
        lease = self._leases.get(key)
        if lease is not None and lease.limit == limit and lease.window_us == window_us:
            return self._admit(lease, cost, now_us)
        return None

    async def hit(self, key: str, cost: int, limit: int, window_us: int, now_us: int | None) -> RawDecision:
        decision = self.try_hit(key, cost, limit, window_us, now_us)
        if decision is not None:
            return decision
        async with self._lock(key):
            decision = self.try_hit(key, cost, limit, window_us, now_us)  # renewed while this hit waited
            if decision is not None:
                return decision
            return await self._renew(key, cost, limit, window_us, now_us)

    def _lock(self, key: str) -> asyncio.Lock:
        """The lock that keeps one renewal or settlement of ``key`` in flight at a time."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def _renew(self, key: str, cost: int, limit: int, window_us: int, now_us: int | None) -> RawDecision:
        """Settle this key's lease (if any) and ask for a new one that admits this hit (one script call)."""
        if self._down_until and time.monotonic() < self._down_until:
            raise BackendUnavailable("redis unavailable (waiting before retrying)")
        old = self._leases.get(key)
        lease_us = lease_us_for(window_us)
        # twice what the last lease used, at least twice this cost, at most a tenth of the budget
        want = max(cost, min(max(2 * old.used_points if old else 0, 2 * cost), limit // 10))
        new_id = f"{self._id_prefix}{next(self._ids)}"
        args: list[object] = ["" if now_us is None else now_us, window_us, limit, cost, want, lease_us, new_id]
        args += old.settle() if old is not None else ["", 0]
        sent_us = time.monotonic_ns() // 1000
        try:
            self.script_calls += 1
            res = [int(x) for x in await self._script(keys=self._keys(key), args=args)]
        except _ERRORS as exc:
            if old is not None:
                self._drop(key, old)  # its reservation stays in Redis until it expires (over-counting only)
            self._down_until = time.monotonic() + self.retry_interval
            log.warning("ratelimit_redis_unavailable", error=f"{type(exc).__name__}: {exc}",
                        retry_in_seconds=self.retry_interval)
            raise BackendUnavailable(str(exc)) from exc
        if self._down_until:
            self._down_until = 0.0
            log.info("ratelimit_redis_recovered")
        if old is not None:  # settled: its points are back in Redis
            self._drop(key, old)
        granted, used, now, reset, wait = res[:5]
        if not granted:
            return RawDecision(False, used, now, reset, wait)
        leaving = [(res[i], res[i + 1]) for i in range(5, len(res), 2)]
        lease = _Lease(new_id, limit, window_us, now, now + lease_us, granted, used - granted, leaving,
                       None if now_us is not None else now - sent_us)
        self._leases[key] = lease
        if now_us is None:  # production clock: give unused points back when the lease ends unused
            loop = asyncio.get_running_loop()
            lease.timer = loop.call_later(lease_us / 1e6 + 0.05, self._settle_later, key, lease)
        decision = self._admit(lease, cost, now_us if now_us is not None else now)
        assert decision is not None  # granted >= cost, at the lease's first instant
        return decision

    def _drop(self, key: str, lease: _Lease) -> None:
        if self._leases.get(key) is lease:
            del self._leases[key]
        if lease.timer is not None:
            lease.timer.cancel()
            lease.timer = None

    def _settle_later(self, key: str, lease: _Lease) -> None:
        lease.timer = None
        if self._leases.get(key) is lease:
            task = asyncio.ensure_future(self._settle(key, lease))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _settle(self, key: str, lease: _Lease) -> None:
        """Give a lease's unused points back and log its admissions (no new lease)."""
        async with self._lock(key):
            if self._leases.get(key) is not lease:
                return
            # An injected clock's time is the newest this lease saw; the production clock is Redis's TIME.
            now: object = "" if lease.clock_base_us is not None else max(lease.start_us, *lease.admitted_t)
            args: list[object] = [now, lease.window_us, lease.limit, 0, 0, lease_us_for(lease.window_us), "",
                                  *lease.settle()]
            try:
                self.script_calls += 1
                await self._script(keys=self._keys(key), args=args)
            except _ERRORS as exc:  # the reservation then simply expires (it only ever over-counts)
                log.warning("ratelimit_redis_settle_failed", error=f"{type(exc).__name__}: {exc}")
            self._drop(key, lease)

    async def reset(self, key: str) -> None:
        lease = self._leases.get(key)
        if lease is not None:
            self._drop(key, lease)
        await self.client.delete(*self._keys(key))

    async def aclose(self) -> None:
        """Give back every lease's unused points, then close the client (when this backend owns it)."""
        for key, lease in list(self._leases.items()):
            try:
                await asyncio.wait_for(self._settle(key, lease), 2.0)
            except (asyncio.TimeoutError, BackendUnavailable):
                pass
        if self._owns_client:
            await self.client.aclose()
