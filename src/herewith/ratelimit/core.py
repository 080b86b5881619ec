"""The rate-limit rule, independent of storage and HTTP (CONTRACT.md, "Rate limiting").

Algorithm: an exact **sliding log of points**. Every admitted request is logged as ``(t, cost)``; a request
of ``cost`` points at time ``now`` is admitted when the points logged in ``(now - window, now]`` plus
``cost`` fit in the budget. An entry stops counting at ``t + window``. A throttled request is not logged
(it costs nothing). Hence no half-open interval ``[a, a + window)`` ever holds more admitted points than
the budget, unlike fixed buckets (up to 2x at a boundary) or GCRA (up to budget + window * rate = 2x).

Times are integer **microseconds** since the epoch inside the backends (both backends do the same
integer arithmetic, so they give identical decisions); :class:`Decision` exposes epoch seconds and
milliseconds as the HTTP layer needs them.

Header semantics chosen here:

- ``remaining`` = budget - points in the window after this request (never below 0).
- ``reset`` = when the whole budget is free again: the newest logged entry + window (``now`` when empty).
- ``retry_after_ms`` (only when throttled) = the least wait after which *this* request would be admitted,
  i.e. until enough of the oldest entries leave the window; the contract's ``msLeft``. A request that costs
  more than the whole budget can never be admitted; it gets ``retry_after_ms = window``.

Usage::

    limiter = RateLimiter(MemoryBackend(), window_seconds=60)
    d = await limiter.hit("organization:org_1", cost=cost_of("POST"), limit=1000)
    if not d.allowed: ...  # 429, Retry-After: d.retry_after_seconds, msLeft: d.retry_after_ms
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NamedTuple, Protocol

import structlog

log = structlog.get_logger(__name__)

#: Points per request by HTTP method (CONTRACT.md, "Rate limiting"). Unknown methods cost 1.
METHOD_COSTS: dict[str, int] = {"GET": 1, "HEAD": 1, "OPTIONS": 1, "DELETE": 2, "POST": 3, "PUT": 3, "PATCH": 3}

#: Budget in points per window by plan (CONTRACT.md). ``grow`` is the default plan.
PLAN_POINTS: dict[str, int] = {"build": 100, "grow": 1000}
DEFAULT_PLAN = "grow"

US = 1_000_000


def cost_of(method: str) -> int:
    """Points a request with this HTTP method costs: GET/HEAD 1, DELETE 2, POST/PUT/PATCH 3."""
    return METHOD_COSTS.get(method.upper(), 1)


def budget_for(plan: str | None, custom_points: int | None = None) -> int:
    """Points per window for an organization: ``custom_points`` when set, else its plan's (build 100, grow 1000)."""
    if custom_points is not None:
        return int(custom_points)
    return PLAN_POINTS.get(plan or DEFAULT_PLAN, PLAN_POINTS[DEFAULT_PLAN])


class Decision(NamedTuple):
    """The outcome of one :meth:`RateLimiter.hit`.

    ``allowed``: admitted (and charged); ``limit``: the budget (points per window); ``remaining``: points
    left in the window after this request; ``reset``: epoch seconds (float) when the full budget is free
    again; ``retry_after_ms``: 0 when allowed, else milliseconds until this request would be admitted
    (the contract's ``msLeft``); ``cost``: points this request costs; ``degraded``: the backend was
    unreachable and the limiter failed open (nothing was counted).
    """

    allowed: bool
    limit: int
    remaining: int
    reset: float
    retry_after_ms: int = 0
    cost: int = 1
    degraded: bool = False

    @property
    def retry_after_seconds(self) -> int:
        """``Retry-After`` value: whole seconds, rounded up (0 when allowed)."""
        return math.ceil(self.retry_after_ms / 1000) if self.retry_after_ms > 0 else 0


class RawDecision(NamedTuple):
    """What a backend returns, all integers in microseconds: admitted?, points used after the call, the
    clock it used, reset (newest entry + window), wait until this request would fit (0 when admitted)."""

    allowed: bool
    used: int
    now_us: int
    reset_us: int
    wait_us: int


class BackendUnavailable(Exception):
    """The storage (Redis) could not be reached; the limiter then fails open or closed."""


class RateLimiterUnavailable(Exception):
    """Raised by :meth:`RateLimiter.hit` when the backend is down and ``fail_open`` is False.
    The HTTP layer answers 503 with ``Retry-After: 1``."""


class Backend(Protocol):
    async def hit(self, key: str, cost: int, limit: int, window_us: int, now_us: int | None) -> RawDecision:
        """Atomically apply the sliding-log rule to ``key``; ``now_us`` None means "use your own clock"."""
        ...

    def try_hit(self, key: str, cost: int, limit: int, window_us: int, now_us: int | None) -> RawDecision | None:
        """The same, when it can be decided without waiting for I/O (in memory, or from a Redis lease);
        None otherwise (then :meth:`hit` is called)."""
        ...

    async def reset(self, key: str) -> None: ...

    async def aclose(self) -> None: ...


class RateLimiter:
    """Charges points against a per-key budget over a sliding window.

    ``backend``: :class:`~herewith.ratelimit.memory.MemoryBackend` or
    :class:`~herewith.ratelimit.redis_backend.RedisBackend`; ``window_seconds``: 60 per the contract
    (a setting so tests can shorten it); ``clock``: a callable returning epoch seconds. When ``clock`` is
    None the backend uses its own clock (the process clock in memory, the server ``TIME`` in Redis so that
    processes on several hosts agree); tests pass a controllable clock (see :class:`ManualClock`).
    ``fail_open``: when the backend is unreachable, admit (and log a warning) instead of raising
    :class:`RateLimiterUnavailable`.
    """

    def __init__(self, backend: Backend, *, window_seconds: float = 60.0,
                 clock: Callable[[], float] | None = None, fail_open: bool = True) -> None:
        self.backend = backend
        self.window_us = int(round(window_seconds * US))
        self.clock = clock
        self.fail_open = fail_open

    def try_hit(self, key: str, cost: int, limit: int) -> Decision | None:
        """:meth:`hit` without awaiting, when the backend can decide at once (the in-process backend always,
        Redis from a lease); None when only :meth:`hit` can. Most requests are charged this way, which
        spares them the coroutine layers of :meth:`hit`."""
        raw = self.backend.try_hit(key, cost, limit, self.window_us,
                                   round(self.clock() * US) if self.clock is not None else None)
        if raw is None:
            return None
        return self._decision(raw, cost, limit)

    def _decision(self, raw: RawDecision, cost: int, limit: int) -> Decision:
        return Decision(
            allowed=raw.allowed,
            limit=limit,
            remaining=max(0, limit - raw.used),
            reset=raw.reset_us / US,
            retry_after_ms=0 if raw.allowed else max(1, -(-raw.wait_us // 1000)),
            cost=cost,
        )

    async def hit(self, key: str, cost: int, limit: int) -> Decision:
        """Charge ``cost`` points to ``key`` if they fit in ``limit`` over the window; see :class:`Decision`.

        Raises :class:`RateLimiterUnavailable` only when the backend is down and ``fail_open`` is False.
        """
        now_us = round(self.clock() * US) if self.clock is not None else None
        try:
            raw = await self.backend.hit(key, cost, limit, self.window_us, now_us)
        except BackendUnavailable as exc:
            if not self.fail_open:
                raise RateLimiterUnavailable(str(exc)) from exc
            now = self.clock() if self.clock is not None else time.time()
            return Decision(True, limit, limit, now, 0, cost, degraded=True)
        return self._decision(raw, cost, limit)

    async def reset(self, key: str) -> None:
        """Forget everything logged for ``key``."""
        await self.backend.reset(key)

    async def aclose(self) -> None:
        await self.backend.aclose()


class ManualClock:
    """A controllable clock for tests: ``clock()`` returns epoch seconds; ``advance(s)`` moves it on.

    Usage::

        clock = ManualClock(1_700_000_000.0)
        limiter = RateLimiter(MemoryBackend(), clock=clock)
        clock.advance(60)
    """

    def __init__(self, start: float | None = None) -> None:
        self.now = float(start if start is not None else time.time())

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, epoch_seconds: float) -> None:
        self.now = float(epoch_seconds)
