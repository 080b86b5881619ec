"""When to try a request again, and how long to wait first.

Written here rather than with tenacity (which the server uses) so that the client keeps to httpx and
pydantic; httpx's own transport ``retries`` covers only failed connects, without waits or ``Retry-After``.

- 429: wait ``Retry-After`` (seconds or an HTTP date; else ``data.msLeft``), if it is at most the client's
  ``max_retry_wait``; the server did nothing for a throttled request (contract, "Rate limiting").
- 503 with ``Retry-After``: the server's shared limiter is unreachable and nothing was counted; same wait.
- No response: a failed connect (nothing was sent) is retried for every method; a dropped connection or a
  timeout after the request was sent only for GET, HEAD, PUT, DELETE and OPTIONS, which the API treats as
  idempotent (a POST may have created a meeting). Waits back off exponentially: 0.5 s, 1 s, 2 s... (at most
  8 s), with +-25 % jitter.
"""

from __future__ import annotations

import email.utils
import random
import time

import httpx

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds the server asks to wait: ``Retry-After`` as seconds or HTTP date, else the body's
    ``data.msLeft`` / 1000; None when it says neither."""
    value = response.headers.get("Retry-After")
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
                return max(0.0, when.timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    try:
        ms_left = response.json().get("data", {}).get("msLeft")
    except (ValueError, AttributeError):
        return None
    return max(0.0, float(ms_left) / 1000) if isinstance(ms_left, (int, float)) else None


def backoff(attempt: int) -> float:
    """The wait before retry ``attempt`` (0 for the first) after a connection error."""
    return min(0.5 * 2.0**attempt, 8.0) * random.uniform(0.75, 1.25)


def wait_for_response(response: httpx.Response, max_wait: float) -> float | None:
    """Seconds to wait before sending again after ``response``, or None when it is final."""
    if response.status_code == 429 or (response.status_code == 503 and "Retry-After" in response.headers):
        wait = retry_after_seconds(response)
        if wait is None:
            wait = 1.0
        return wait if wait <= max_wait else None
    return None


def retryable_error(exc: httpx.TransportError, method: str) -> bool:
    """Whether a request that got no response may be sent again (see the module docstring)."""
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return True
    return method.upper() in IDEMPOTENT
