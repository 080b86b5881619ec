"""``Herewith`` and ``AsyncHerewith``: the API's base URL and key, an httpx client, retries, and the resources.

Usage::

    client = Herewith(base_url="http://127.0.0.1:8080", api_key="hw_...")   # or HEREWITH_BASE_URL / HEREWITH_API_KEY
    meeting = client.meetings.create(end_date="2099-02-18T14:23:00Z")

    async with AsyncHerewith(base_url=..., api_key=...) as aclient:
        meeting = await aclient.meetings.create(end_date=...)

``base_url`` is the server's address (``https://meet.example.com``); ``/v1`` is added unless it is there.
"""

from __future__ import annotations

import asyncio
import os
import time
from functools import lru_cache
from typing import Any, TypeVar, overload

import httpx
from pydantic import TypeAdapter

from herewith_client import _retry
from herewith_client._exceptions import (
    APIConnectionError,
    APITimeoutError,
    HerewithError,
    error_for,
)
from herewith_client.pagination import AsyncPage, AsyncPaginator, SyncPage
from herewith_client.resources.insights import AsyncInsights, Insights
from herewith_client.resources.meetings import AsyncMeetings, Meetings
from herewith_client.resources.recordings import AsyncRecordings, Recordings
from herewith_client.resources.summaries import AsyncSummaries, Summaries
from herewith_client.resources.theming import AsyncTheming, Theming
from herewith_client.resources.transcriptions import AsyncTranscriptions, Transcriptions
from herewith_client.resources.webhooks import AsyncWebhooks, Webhooks

__version__ = "0.1.0"

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0  # seconds, per request
DEFAULT_MAX_RETRIES = 2  # sends after the first: at most 3 in all
DEFAULT_MAX_RETRY_WAIT = 60.0  # a 429 asking to wait longer than this is raised at once


@lru_cache(maxsize=None)
def _adapter(cast: Any) -> TypeAdapter[Any]:
    return TypeAdapter(cast)


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Query parameters without the ones left out (None); lists become comma-separated (``fields``)."""
    if not params:
        return None
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        out[key] = value
    return out


def _request_of(exc: httpx.TransportError) -> httpx.Request | None:
    try:
        return exc.request
    except RuntimeError:  # httpx raises when the exception has no request attached
        return None


class _BaseClient:
    """What the sync and async clients share: configuration, headers, turning responses into models."""

    def __init__(self, base_url: str | None, api_key: str | None, timeout: float | httpx.Timeout,
                 max_retries: int, max_retry_wait: float, default_headers: dict[str, str] | None) -> None:
        base_url = base_url or os.environ.get("HEREWITH_BASE_URL")
        api_key = api_key or os.environ.get("HEREWITH_API_KEY")
        if not base_url:
            raise HerewithError("base_url is required: pass base_url= or set HEREWITH_BASE_URL")
        if not api_key:
            raise HerewithError("api_key is required: pass api_key= or set HEREWITH_API_KEY")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        root = base_url.rstrip("/")
        self.base_url = root if root.endswith("/v1") else root + "/v1"
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": f"herewith-client/{__version__}",
            **(default_headers or {}),
        }

    @staticmethod
    def _parse(response: httpx.Response, cast: Any) -> Any:
        if response.status_code >= 400:
            raise error_for(response)
        if cast is None or response.status_code == 204:
            return None
        return _adapter(cast).validate_python(response.json())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"


class Herewith(_BaseClient):
    """The synchronous client.

    ``base_url``: the server (default ``HEREWITH_BASE_URL``); ``api_key``: an organization's key (default
    ``HEREWITH_API_KEY``); ``timeout``: seconds per request (or an ``httpx.Timeout``); ``max_retries``: how
    many times a request is sent again after a 429, a 503 with ``Retry-After`` or a connection error
    (see :mod:`herewith_client._retry`); ``max_retry_wait``: the longest ``Retry-After`` waited for (a longer
    one raises :class:`~herewith_client.RateLimitError` at once); ``http_client``: your own ``httpx.Client``
    (its base URL and headers are left alone; the client's are sent with each request).

    Resources: :attr:`meetings`, :attr:`recordings`, :attr:`transcriptions`, :attr:`summaries`, :attr:`insights`,
    :attr:`theming`, :attr:`webhooks`.
    Close it with :meth:`close` or use it as a context manager.
    """

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *,
                 timeout: float | httpx.Timeout = DEFAULT_TIMEOUT, max_retries: int = DEFAULT_MAX_RETRIES,
                 max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT, default_headers: dict[str, str] | None = None,
                 http_client: httpx.Client | None = None) -> None:
        super().__init__(base_url, api_key, timeout, max_retries, max_retry_wait, default_headers)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)
        self.meetings = Meetings(self)
        self.recordings = Recordings(self)
        self.transcriptions = Transcriptions(self)
        self.summaries = Summaries(self)
        self.insights = Insights(self)
        self.theming = Theming(self)
        self.webhooks = Webhooks(self)

    def _send(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None,
              files: Any = None) -> httpx.Response:
        """Send with retries; the final response (any status). Raises APIConnectionError/APITimeoutError."""
        url = self.base_url + path
        attempt = 0
        while True:
            try:
                response = self._http.request(method, url, params=_clean(params), json=json, files=files,
                                              headers=self._headers, timeout=self.timeout)
            except httpx.TransportError as exc:
                if attempt < self.max_retries and _retry.retryable_error(exc, method):
                    time.sleep(_retry.backoff(attempt))
                    attempt += 1
                    continue
                error = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
                raise error(f"{method} {url}: {type(exc).__name__}: {exc}", _request_of(exc)) from exc
            wait = _retry.wait_for_response(response, self.max_retry_wait) if attempt < self.max_retries else None
            if wait is None:
                return response
            response.close()
            time.sleep(wait)
            attempt += 1

    @overload
    def _request(self, method: str, path: str, *, cast: type[T], params: dict[str, Any] | None = None,
                 json: Any = None, files: Any = None) -> T: ...

    @overload
    def _request(self, method: str, path: str, *, cast: None = None, params: dict[str, Any] | None = None,
                 json: Any = None, files: Any = None) -> None: ...

    def _request(self, method: str, path: str, *, cast: Any = None, params: dict[str, Any] | None = None,
                 json: Any = None, files: Any = None) -> Any:
        """Send (with retries) and return the body as ``cast`` (None for no body); raise the status's error."""
        return self._parse(self._send(method, path, params=params, json=json, files=files), cast)

    def _list(self, path: str, item: type[T], params: dict[str, Any] | None = None) -> SyncPage[T]:
        def fetch(cursor: str | None) -> SyncPage[T]:
            body = self._request("GET", path, cast=dict[str, Any], params={**(params or {}), "cursor": cursor})
            results = _adapter(list[item]).validate_python(body.get("results") or [])  # type: ignore[valid-type]
            return SyncPage(results, body.get("cursor"), fetch)

        return fetch(None)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Herewith:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncHerewith(_BaseClient):
    """The asynchronous client (asyncio): the same arguments and resources as :class:`Herewith`, every call
    awaited; list calls return an :class:`~herewith_client.pagination.AsyncPaginator` (``await`` it for the
    first page, ``async for`` over it for every item). Close it with :meth:`aclose` or ``async with``."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *,
                 timeout: float | httpx.Timeout = DEFAULT_TIMEOUT, max_retries: int = DEFAULT_MAX_RETRIES,
                 max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT, default_headers: dict[str, str] | None = None,
                 http_client: httpx.AsyncClient | None = None) -> None:
        super().__init__(base_url, api_key, timeout, max_retries, max_retry_wait, default_headers)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self.meetings = AsyncMeetings(self)
        self.recordings = AsyncRecordings(self)
        self.transcriptions = AsyncTranscriptions(self)
        self.summaries = AsyncSummaries(self)
        self.insights = AsyncInsights(self)
        self.theming = AsyncTheming(self)
        self.webhooks = AsyncWebhooks(self)

    async def _send(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None,
                    files: Any = None) -> httpx.Response:
        url = self.base_url + path
        attempt = 0
        while True:
            try:
                response = await self._http.request(method, url, params=_clean(params), json=json, files=files,
                                                    headers=self._headers, timeout=self.timeout)
            except httpx.TransportError as exc:
                if attempt < self.max_retries and _retry.retryable_error(exc, method):
                    await asyncio.sleep(_retry.backoff(attempt))
                    attempt += 1
                    continue
                error = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
                raise error(f"{method} {url}: {type(exc).__name__}: {exc}", _request_of(exc)) from exc
            wait = _retry.wait_for_response(response, self.max_retry_wait) if attempt < self.max_retries else None
            if wait is None:
                return response
            await response.aclose()
            await asyncio.sleep(wait)
            attempt += 1

    @overload
    async def _request(self, method: str, path: str, *, cast: type[T], params: dict[str, Any] | None = None,
                       json: Any = None, files: Any = None) -> T: ...

    @overload
    async def _request(self, method: str, path: str, *, cast: None = None, params: dict[str, Any] | None = None,
                       json: Any = None, files: Any = None) -> None: ...

    async def _request(self, method: str, path: str, *, cast: Any = None, params: dict[str, Any] | None = None,
                       json: Any = None, files: Any = None) -> Any:
        """See :meth:`Herewith._request`."""
        return self._parse(await self._send(method, path, params=params, json=json, files=files), cast)

    def _list(self, path: str, item: type[T], params: dict[str, Any] | None = None) -> AsyncPaginator[T]:
        async def fetch(cursor: str | None) -> AsyncPage[T]:
            body = await self._request("GET", path, cast=dict[str, Any], params={**(params or {}), "cursor": cursor})
            results = _adapter(list[item]).validate_python(body.get("results") or [])  # type: ignore[valid-type]
            return AsyncPage(results, body.get("cursor"), fetch)

        return AsyncPaginator(lambda: fetch(None))

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncHerewith:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
