"""HTTP side of the rate limit (CONTRACT.md, "Rate limiting"): the ``/v1`` dependency and the headers.

- :func:`rate_limit_enforcer` makes the hook that runs in the ``/v1`` routers' authentication dependency
  (:func:`herewith.auth.dependencies.get_organization`). After the Bearer key is resolved to an
  organization it charges the request's points (GET/HEAD 1, DELETE 2, POST/PUT/PATCH 3) to
  ``organization:<id>``. When they don't fit it raises a 429 before the endpoint runs, with
  ``Retry-After`` (whole seconds, rounded up) and the body
  ``{"error": "Rate limit active for throttle key: organization:<id>", "data": {"msLeft": <int>}}``.
- :class:`RateLimitHeaders` (pure ASGI middleware) adds ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``
  and ``X-RateLimit-Reset`` (an HTTP date, rounded up to the second) to every ``/v1`` response of a
  request that was charged, errors included (404, 400 from the endpoint, 429).
  Requests rejected before an organization is known (401, malformed JSON, unknown route) carry no
  budget and so no headers.
- Redis down with ``ratelimit_fail_open=False``: 503 ``Rate limiter unavailable`` with ``Retry-After: 1``
  (not 429: nothing was counted, and clients retry 503 after ``Retry-After`` too).

Usage (what ``create_app`` does)::

    limiter = create_limiter(settings)
    charge_request = rate_limit_enforcer(limiter)          # the lifespan state's ``charge_request``
    app.add_middleware(RateLimitHeaders)
    app.include_router(meetings_router, prefix="/v1", dependencies=[Depends(get_organization)])
"""

from __future__ import annotations

import email.utils
import functools
import math
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from herewith.auth.models import OrganizationRef
from herewith.errors import HerewithError
from herewith.kit import metrics

from .core import Decision, RateLimiter, RateLimiterUnavailable, budget_for, cost_of

STATE_KEY = "ratelimit"


def throttle_key(organization_id: str) -> str:
    """The key a budget is kept under, as the contract's error message names it."""
    return f"organization:{organization_id}"


@functools.lru_cache(maxsize=8)
def _http_date(epoch_seconds: int) -> str:
    # Requests of the same second share their reset date: format it once.
    return email.utils.format_datetime(datetime.fromtimestamp(epoch_seconds, tz=timezone.utc), usegmt=True)


def _raw_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    """``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (HTTP date) for a decision, as ASGI header pairs."""
    return [
        (b"x-ratelimit-limit", b"%d" % decision.limit),
        (b"x-ratelimit-remaining", b"%d" % decision.remaining),
        (b"x-ratelimit-reset", _http_date(math.ceil(decision.reset)).encode("latin-1")),
    ]


def rate_limit_enforcer(limiter: RateLimiter) -> Callable[[Request, OrganizationRef], Awaitable[None] | None]:
    """The ``charge_request`` hook for ``limiter`` (the lifespan state's; called by the ``/v1`` dependency).

    ``hook(request, org)`` charges the request to its organization's budget, stores the :class:`Decision`
    in ``request.state.ratelimit`` for :class:`RateLimitHeaders`, and raises the contract's 429 when the
    points don't fit (503 when the limiter is unavailable and fails closed). It decides synchronously and
    returns None when the limiter can (:meth:`RateLimiter.try_hit`: always in process, from a lease on
    Redis); otherwise it returns an awaitable that does the same.
    """

    def apply(request: Request, key: str, decision: Decision) -> None:
        request.scope["state"][STATE_KEY] = decision
        if not decision.allowed:
            metrics.RATE_LIMIT_REFUSALS.labels("api").inc()
            # X-RateLimit-* are added by RateLimitHeaders, as on every charged response.
            raise HerewithError(f"Rate limit active for throttle key: {key}", status=429,
                                data={"msLeft": decision.retry_after_ms},
                                headers={"Retry-After": str(decision.retry_after_seconds)})

    async def charge_async(request: Request, key: str, cost: int, budget: int) -> None:
        try:
            decision = await limiter.hit(key, cost, budget)
        except RateLimiterUnavailable:
            raise HerewithError("Rate limiter unavailable", status=503, headers={"Retry-After": "1"}) from None
        apply(request, key, decision)

    def enforce_rate_limit(request: Request, org: OrganizationRef) -> Awaitable[None] | None:
        key = throttle_key(org.id)
        cost = cost_of(request.method)
        budget = budget_for(org.plan, org.rate_limit_points)
        decision = limiter.try_hit(key, cost, budget)
        if decision is None:
            return charge_async(request, key, cost, budget)
        apply(request, key, decision)
        return None

    return enforce_rate_limit


class RateLimitHeaders:
    """Pure ASGI middleware: adds the ``X-RateLimit-*`` headers to ``/v1`` responses of charged requests."""

    def __init__(self, app: ASGIApp, prefix: str = "/v1") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision = state.get(STATE_KEY)
                if decision is not None:
                    message["headers"] = [*message.get("headers", ()), *_raw_headers(decision)]
            await send(message)

        await self.app(scope, receive, send_with_headers)
