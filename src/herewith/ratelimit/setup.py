"""Build the limiter a process uses from its :class:`~herewith.config.Settings`."""

from __future__ import annotations

from typing import Any

from .core import RateLimiter
from .memory import MemoryBackend
from .redis_backend import RedisBackend


def create_limiter(settings: Any) -> RateLimiter | None:
    """The process's limiter, or None when ``ratelimit_enabled`` is False.

    Backend: ``ratelimit_backend`` = ``memory`` | ``redis`` | ``auto`` (default: Redis when ``redis_url``
    is set, else in-process). Window: ``ratelimit_window_seconds`` (60). Unreachable Redis:
    ``ratelimit_fail_open`` (True: admit and log; False: the API answers 503).
    """
    if not getattr(settings, "ratelimit_enabled", True):
        return None
    kind = getattr(settings, "ratelimit_backend", "auto")
    if kind not in ("auto", "memory", "redis"):
        raise ValueError(f"ratelimit_backend must be auto, memory or redis, not {kind!r}")
    redis_url = getattr(settings, "redis_url", None)
    if kind == "redis" or (kind == "auto" and redis_url):
        if not redis_url:
            raise ValueError("ratelimit_backend=redis needs HEREWITH_REDIS_URL")
        backend: Any = RedisBackend.from_url(redis_url, prefix=getattr(settings, "ratelimit_prefix", "herewith:rl:"))
    else:
        backend = MemoryBackend()
    return RateLimiter(
        backend,
        window_seconds=getattr(settings, "ratelimit_window_seconds", 60.0),
        fail_open=getattr(settings, "ratelimit_fail_open", True),
    )
