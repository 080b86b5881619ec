"""In-process backend: one sliding log per key in a dict (the default when no Redis is configured).

Each :meth:`MemoryBackend.hit` runs without awaiting, so it is atomic with respect to other asyncio
tasks of the same event loop; a ``threading.Lock`` also makes it safe from worker threads. The budget is
per process: several server processes need :class:`~herewith.ratelimit.redis_backend.RedisBackend`.
Memory is bounded: at most ``limit / min cost`` entries per active key, and with the process clock at
most one per millisecond; keys whose newest entry has left the window are swept from time to time.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from .core import RawDecision

_SWEEP_EVERY = 4096


class _Log:
    # Two deques of plain ints rather than one of (t, cost) tuples: a busy key keeps a minute of entries
    # (180,000 at 3,000 requests/s, before entries were per millisecond), and ints are invisible to the
    # garbage collector, tuples are not. bench/ratelimit.py, two runs in a row: +19 % of server CPU per
    # request with tuples, +9 % with ints.
    __slots__ = ("times", "costs", "used")

    def __init__(self) -> None:
        self.times: deque[int] = deque()  # t_us, oldest first, each time once
        self.costs: deque[int] = deque()  # points admitted at that time
        self.used = 0


class MemoryBackend:
    """Sliding logs in this process. ``now_us=None`` in :meth:`hit` means ``time.time()``."""

    def __init__(self) -> None:
        self._logs: dict[str, _Log] = {}
        self._lock = threading.Lock()
        self._calls = 0

    async def hit(self, key: str, cost: int, limit: int, window_us: int, now_us: int | None) -> RawDecision:
        return self.try_hit(key, cost, limit, window_us, now_us)

    def try_hit(self, key: str, cost: int, limit: int, window_us: int, now_us: int | None) -> RawDecision:
        """Decided at once, always (never None): everything is in this process."""
        if now_us is None:
            # The process clock, rounded up to the millisecond: requests of one millisecond share an entry
            # (at most 1,000 a second per key), each counted until a little after it left the window,
            # never before.
            now_us = -(-time.time_ns() // 1_000_000) * 1000
        with self._lock:
            self._calls += 1
            if self._calls % _SWEEP_EVERY == 0:
                self._sweep(now_us, window_us)
            log = self._logs.get(key)
            if log is None:
                log = self._logs[key] = _Log()
            times, costs = log.times, log.costs
            cutoff = now_us - window_us  # entries at t <= cutoff no longer count
            while times and times[0] <= cutoff:
                times.popleft()
                log.used -= costs.popleft()
            if log.used + cost <= limit:
                if times and times[-1] == now_us:
                    costs[-1] += cost
                else:
                    times.append(now_us)
                    costs.append(cost)
                log.used += cost
                return RawDecision(True, log.used, now_us, now_us + window_us, 0)
            reset_us = (times[-1] + window_us) if times else now_us
            if cost > limit:
                wait_us = window_us
            else:
                need = log.used + cost - limit
                freed = 0
                wait_us = window_us
                for t, c in zip(times, costs):
                    freed += c
                    if freed >= need:
                        wait_us = t + window_us - now_us
                        break
            return RawDecision(False, log.used, now_us, reset_us, wait_us)

    def _sweep(self, now_us: int, window_us: int) -> None:
        cutoff = now_us - window_us
        for key in [k for k, v in self._logs.items() if not v.times or v.times[-1] <= cutoff]:
            del self._logs[key]

    async def reset(self, key: str) -> None:
        with self._lock:
            self._logs.pop(key, None)

    async def aclose(self) -> None:
        self._logs.clear()
