"""Point-based rate limiting per organization (CONTRACT.md, "Rate limiting"; issue 4).

GET/HEAD cost 1 point, DELETE 2, POST/PUT/PATCH 3; the budget per 60 s is the organization's plan
(build 100, grow 1000) or its custom ``rate_limit_points``. The window slides exactly (see
:mod:`herewith.ratelimit.core`). Storage is in-process by default, Redis when ``HEREWITH_REDIS_URL`` is set;
with Redis each process admits requests from leases on the shared budget, so most requests cost no round
trip and no window ever admits more than the budget across processes (see
:mod:`herewith.ratelimit.redis_backend`).

Usage::

    from herewith.ratelimit import RateLimiter, MemoryBackend, cost_of
    limiter = RateLimiter(MemoryBackend())
    decision = await limiter.hit("organization:org_1", cost_of("GET"), limit=1000)

In the app, :func:`herewith.ratelimit.http.install` attaches the limiter and the header middleware, and the
hook made by :func:`herewith.ratelimit.http.rate_limit_enforcer` runs in the authentication dependency of
every ``/v1`` router.
"""

from .core import (
    METHOD_COSTS,
    PLAN_POINTS,
    Backend,
    BackendUnavailable,
    Decision,
    ManualClock,
    RateLimiter,
    RateLimiterUnavailable,
    budget_for,
    cost_of,
)
from .memory import MemoryBackend
from .redis_backend import RedisBackend
from .setup import create_limiter

__all__ = [
    "METHOD_COSTS",
    "PLAN_POINTS",
    "Backend",
    "BackendUnavailable",
    "Decision",
    "ManualClock",
    "MemoryBackend",
    "RateLimiter",
    "RateLimiterUnavailable",
    "RedisBackend",
    "budget_for",
    "cost_of",
    "create_limiter",
]
