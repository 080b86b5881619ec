"""Exceptions of the client: one class per HTTP status the API answers, each carrying the API's error body.

The server's error body is ``{"error": "<message>", "data": {...}}`` (``data`` only where there is detail:
for a 400 the offending fields, for a 429 ``msLeft``, for a 413 ``maxBytes``); see the Herewith API contract,
"Common rules". Hierarchy::

    HerewithError
    ├── APIError
    │   ├── APIConnectionError          no response: refused, reset, DNS (after the retries)
    │   │   └── APITimeoutError
    │   └── APIStatusError              a 4xx/5xx response: .status_code, .message, .data, .body, .response
    │       ├── BadRequestError         400
    │       ├── AuthenticationError     401
    │       ├── PermissionDeniedError   403
    │       ├── NotFoundError           404
    │       ├── ConflictError           409
    │       ├── GoneError               410
    │       ├── PayloadTooLargeError    413
    │       ├── RateLimitError          429 (.retry_after, .ms_left)
    │       └── InternalServerError     5xx
    └── WebhookVerificationError        verify_webhook refused a delivery
"""

from __future__ import annotations

from typing import Any

import httpx


class HerewithError(Exception):
    """Base of every exception this package raises."""


class APIError(HerewithError):
    """A call to the API failed. ``request``: the httpx request, when there was one."""

    def __init__(self, message: str, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request


class APIConnectionError(APIError):
    """No response was received (connection refused or reset, DNS failure), after the allowed retries."""


class APITimeoutError(APIConnectionError):
    """The request timed out (``timeout`` of the client), after the allowed retries."""


class APIStatusError(APIError):
    """The API answered with an error status.

    ``status_code``: the HTTP status; ``body``: the decoded JSON body (``{"error": ..., "data": ...}``) or
    None when it was not JSON; ``message``: ``body["error"]`` (or the response text); ``data``:
    ``body["data"]`` or None; ``response``: the httpx response.
    """

    status_code: int = 0

    def __init__(self, message: str, *, response: httpx.Response, body: Any) -> None:
        super().__init__(message, response.request)
        self.response = response
        self.status_code = response.status_code
        self.body = body
        self.data: dict[str, Any] | None = body.get("data") if isinstance(body, dict) else None

    def __str__(self) -> str:
        return f"{self.status_code}: {self.message}" + (f" {self.data}" if self.data else "")


class BadRequestError(APIStatusError):
    """400: bad input; ``data`` names each offending field (``{"endDate": "must not be in the past"}``)."""

    status_code = 400


class AuthenticationError(APIStatusError):
    """401: the API key is missing, unknown or revoked."""

    status_code = 401


class PermissionDeniedError(APIStatusError):
    """403: not allowed (e.g. an expired recording access link)."""

    status_code = 403


class NotFoundError(APIStatusError):
    """404: no such resource for this organization (another organization's ids are 404 too)."""

    status_code = 404


class ConflictError(APIStatusError):
    """409: the request conflicts with the resource's state (e.g. an access link of an unfinished recording)."""

    status_code = 409


class GoneError(APIStatusError):
    """410: the resource is no longer available."""

    status_code = 410


class PayloadTooLargeError(APIStatusError):
    """413: the request body is larger than the server accepts (``data["maxBytes"]``)."""

    status_code = 413


class RateLimitError(APIStatusError):
    """429 after the allowed retries: the organization's point budget is spent.

    ``retry_after``: seconds until the call fits (the ``Retry-After`` header, or ``data.msLeft`` / 1000),
    None when the server said neither; ``ms_left``: ``data["msLeft"]`` or None.
    """

    status_code = 429

    def __init__(self, message: str, *, response: httpx.Response, body: Any) -> None:
        super().__init__(message, response=response, body=body)
        ms_left = (self.data or {}).get("msLeft")
        self.ms_left: int | None = ms_left if isinstance(ms_left, int) else None
        from herewith_client._retry import retry_after_seconds

        self.retry_after: float | None = retry_after_seconds(response)


class InternalServerError(APIStatusError):
    """5xx: the server failed, or (503) its shared rate limiter is unreachable."""


class WebhookVerificationError(HerewithError):
    """:func:`herewith_client.verify_webhook` refused a delivery: ``reason`` says why (malformed header,
    timestamp outside the tolerance, signature mismatch, body not JSON)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    413: PayloadTooLargeError,
    429: RateLimitError,
}


def error_for(response: httpx.Response) -> APIStatusError:
    """The exception for an error ``response`` (status >= 400), its body decoded when it is JSON."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        message = body["error"]
    else:
        message = response.text[:500] or response.reason_phrase
    cls = _BY_STATUS.get(response.status_code)
    if cls is None:
        cls = InternalServerError if response.status_code >= 500 else APIStatusError
    return cls(message, response=response, body=body)
