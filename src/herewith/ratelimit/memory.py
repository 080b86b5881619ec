"""In-process backend: one sliding log per key in a dict (the default when no Redis is configured).

Each :meth:`MemoryBackend.hit` runs without awaiting, so it is atomic with respect to other asyncio
tasks of the same event loop; a ``threading.Lock`` also makes it safe from worker threads. The budget is
per process: several server processes need :class:`~herewith.ratelimit.redis_backend.RedisBackend`.
Memory is bounded by the budget: at most ``limit / min cost`` entries per active key, and keys whose
newest entry has left the window are swept from time to time.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from .core import RawDecision

_SWEEP_EVERY = 4096


class _Log:
    __slots__ = ("entries", "used")

    def __init__(self) -> None:
        self.entries: deque[tuple[int, int]] = deque()  # (t_us, cost), oldest first
        self.used = 0


class MemoryBackend:
    """Sliding logs in this process. ``now_us=None`` in :meth:`hit` means ``time.time()``."""

    def __init__(self) -> None:
        self._logs: dict[str, _Log] = {}
        self._lock = threading.Lock()
        self._calls = 0

    async def hit(self, key: str, cost: int, limit: int, window_us: int, now_us: int | None) -> RawDecision:
        return self.hit_sync(key, cost, limit, window_us, now_us)

    def hit_sync(self, key: str, cost: int, limit: int, window_us: int, now_us: int | None) -> RawDecision:
        if now_us is None:
            now_us = time.time_ns() // 1000
        with self._lock:
            self._calls += 1
            if self._calls % _SWEEP_EVERY == 0:
                self._sweep(now_us, window_us)
            log = self._logs.get(key)
            if log is None:
                log = self._logs[key] = _Log()
            entries = log.entries
            cutoff = now_us - window_us  # entries at t <= cutoff no longer count
            while entries and entries[0][0] <= cutoff:
                log.used -= entries.popleft()[1]
            if log.used + cost <= limit:
                entries.append((now_us, cost))
                log.used += cost
                return RawDecision(True, log.used, now_us, now_us + window_us, 0)
            reset_us = (entries[-1][0] + window_us) if entries else now_us
            if cost > limit:
                wait_us = window_us
            else:
                need = log.used + cost - limit
                freed = 0
                wait_us = window_us
                for t, c in entries:
                    freed += c
                    if freed >= need:
                        wait_us = t + window_us - now_us
                        break
            return RawDecision(False, log.used, now_us, reset_us, wait_us)

    def _sweep(self, now_us: int, window_us: int) -> None:
        cutoff = now_us - window_us
        for key in [k for k, v in self._logs.items() if not v.entries or v.entries[-1][0] <= cutoff]:
            del self._logs[key]

    async def reset(self, key: str) -> None:
        with self._lock:
            self._logs.pop(key, None)

    async def aclose(self) -> None:
        self._logs.clear()
