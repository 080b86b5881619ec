"""The delivery worker: take due events from the outbox, POST them signed, log every attempt.

- Isolation: a process sends at most ``webhook_max_concurrent_deliveries`` requests at once (the pool,
  :class:`DeliveryPool`), and an endpoint has at most ``webhook_max_in_flight_per_endpoint`` (default 1)
  requests in flight across all processes. A slow or hanging endpoint therefore holds at most that many places
  of the pool; the other endpoints' events go out beside it. A place is taken again as soon as a request ends,
  not when a whole batch has.
- Order: an endpoint's due events are sent in ``(next_attempt_at, seq)`` order, so with one in flight per
  endpoint first attempts leave in event order; a retried event goes when its retry is due.
- At least once: a worker claims a row by marking it ``sending`` with a lease (``next_attempt_at`` pushed to
  now + timeout + ``webhook_lease_slack_seconds``) and commits before sending; a crash mid-send leaves the row
  to be retried once the lease runs out. The event id and body are the same on every attempt.
- PostgreSQL: rows are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``, so several processes share the
  queue; SQLite: one writer at a time and a conditional update per row (:mod:`herewith.webhooks.repository`).
  The worker's own transactions (claims, outcomes) commit without waiting for the WAL flush on PostgreSQL
  (:func:`repository.commit_without_flush_wait`): a database crash can only make an event go out again.
- Runs: after a success, the same transaction that records it claims the endpoint's next ready event, and the
  task goes on with it (up to ``webhook_batch_size`` events, then its place goes back to the pool): one
  transaction per event for an endpoint with a backlog.
- Failure (non-2xx, network error, timeout after ``webhook_timeout_seconds`` for the whole request, a target
  refused by :mod:`herewith.webhooks.targets`): the event is retried after ``base * 2**(attempt-1)`` seconds,
  capped at ``webhook_retry_max_interval_seconds``, until ``webhook_retry_window_seconds`` (24 h) after the
  event; then it is ``failed``.
- Per-endpoint backoff: a failure also holds the endpoint: none of its waiting events is due before
  ``base * 2**(n-1)`` seconds (capped likewise), ``n`` being the endpoint's consecutive failures in this
  process; the event that failed goes behind them. So a failing endpoint gets one attempt per backoff
  interval, not one per queued event, and a single bad event delays the others by one short interval only.
  An event whose retry window ended while its endpoint was failing is ``failed`` at the endpoint's next failed
  attempt, tried or not.
- The delivery log's ``error`` is a coarse category, never the exception text (which names addresses and
  ports): ``timeout``, ``connection refused``, ``TLS error``, ``DNS lookup failed``, ``connection failed``,
  ``connection closed``, ``refused by policy: <reason>``, ``HTTP <status>``.
- Time comes from a clock (the process's :class:`~herewith.kit.time.Clock`) so tests move it instead of sleeping;
  request timeouts are wall-clock seconds.

:func:`deliver_due` (one round) and :class:`DeliveryPool` are the testable parts;
:func:`herewith.jobs.webhook_delivery.run_webhook_delivery` is the loop started with the app.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpcore
import httpx
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.config import Settings
from herewith.db.transactions import in_transaction
from herewith.kit import metrics
from herewith.webhooks import repository
from herewith.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from herewith.webhooks.signing import SIGNATURE_HEADERS, sign
from herewith.webhooks.targets import TargetRefused

log = structlog.get_logger(__name__)

USER_AGENT = "Herewith-Webhooks/1.0"
RESPONSE_BODY_CHARS = 1000  # of the receiver's answer, kept in the log row (not shown by the API)
BEHIND = timedelta(milliseconds=1)  # a failed event's place: just after its endpoint's other held events


@dataclass(frozen=True)
class Claimed:
    """One event claimed for one attempt (``attempt`` is 1-based)."""

    webhook_event_id: str
    endpoint_id: str
    event_id: str
    type: str
    attempt: int
    payload: bytes
    url: str
    secret: str


@dataclass(frozen=True)
class Outcome:
    """What one attempt gave: ``status_code`` (None without an HTTP answer), ``error`` (a category, see the module
    doc; None on 2xx), the start of the response body, the attempt's duration in milliseconds."""

    status_code: int | None
    error: str | None
    response_body: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_delay(settings: Settings, attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): exponential, capped."""
    return min(settings.webhook_retry_base_seconds * (2 ** max(attempt - 1, 0)), settings.webhook_retry_max_interval_seconds)


async def claim_ready(
    session: AsyncSession, now: datetime, settings: Settings, limit: int, skip_endpoints: Collection[str] = (),
    skip_events: Collection[str] = (),
) -> list[Claimed]:
    """Claim up to ``limit`` events that may be sent now (:func:`repository.ready_events`: due, within their
    endpoint's ``webhook_max_in_flight_per_endpoint``; endpoints in ``skip_endpoints`` and events (ids) in
    ``skip_events`` are left alone). The caller commits right after, then sends each one at once (the lease is
    one timeout plus ``webhook_lease_slack_seconds``)."""
    per_endpoint = settings.webhook_max_in_flight_per_endpoint
    claimed: list[Claimed] = []
    for event in await repository.ready_events(session, now, per_endpoint, limit, skip_endpoints, skip_events):
        item = await _claim(session, event, now, settings)
        if item is not None:
            claimed.append(item)
    return claimed


async def claim_next(
    session: AsyncSession, endpoint_id: str, now: datetime, settings: Settings, skip_events: Collection[str] = ()
) -> Claimed | None:
    """Claim the endpoint's next ready event (:func:`repository.next_ready_event`) if the endpoint has a free
    place; None otherwise. For a worker that just finished one of the endpoint's events in this transaction."""
    event = await repository.next_ready_event(session, endpoint_id, now, skip_events)
    return None if event is None else await _claim(session, event, now, settings)


async def _claim(session: AsyncSession, event: WebhookEvent, now: datetime, settings: Settings) -> Claimed | None:
    lease_until = now + timedelta(seconds=settings.webhook_timeout_seconds + settings.webhook_lease_slack_seconds)
    if not await repository.claim(session, event, event.next_attempt_at, lease_until, now,
                                  settings.webhook_max_in_flight_per_endpoint):
        return None
    endpoint = await session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == event.endpoint_id))
    if endpoint is None:
        return None
    return Claimed(
        webhook_event_id=event.id,
        endpoint_id=event.endpoint_id,
        event_id=event.event_id,
        type=event.type,
        attempt=event.attempts + 1,
        payload=event.payload.encode(),
        url=endpoint.url,
        secret=endpoint.secret,
    )


async def claim_due(session: AsyncSession, now: datetime, settings: Settings) -> list[Claimed]:
    """:func:`claim_ready` with ``webhook_batch_size`` as the limit (caller commits right after)."""
    return await claim_ready(session, now, settings, settings.webhook_batch_size)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, its causes and contexts, and the members of exception groups among them."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)


def error_category(exc: BaseException) -> str:
    """The delivery log's text for a request that got no HTTP answer (module doc): a category without
    addresses, ports or the library's message."""
    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, TargetRefused):
            return str(cause)
    if any(isinstance(c, (TimeoutError, httpx.TimeoutException, httpcore.TimeoutException)) for c in causes):
        return "timeout"
    if any(isinstance(c, (ssl.SSLError, ssl.CertificateError)) for c in causes):
        return "TLS error"
    if any(isinstance(c, socket.gaierror) for c in causes):
        return "DNS lookup failed"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "connection refused"
    if isinstance(exc, httpx.ConnectError):
        return "connection failed"
    return "connection closed"


async def send(http: httpx.AsyncClient, item: Claimed, now: datetime, timeout: float) -> Outcome:
    """POST one event; never raises (but for cancellation). ``timeout`` (seconds) bounds the whole attempt:
    name resolution, connect, TLS, sending and the answer's status line, headers and first bytes of body."""
    signature = sign(item.secret, item.payload, int(now.timestamp()))
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "Herewith-Event-Id": item.event_id}
    headers.update({name: signature for name in SIGNATURE_HEADERS})
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        async with asyncio.timeout(timeout):
            async with http.stream("POST", item.url, content=item.payload, headers=headers, timeout=timeout) as response:
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) >= 4 * RESPONSE_BODY_CHARS:
                        break
    except TimeoutError:
        return Outcome(None, "timeout", None, took())
    except (httpx.HTTPError, httpx.InvalidURL, TargetRefused) as exc:
        return Outcome(None, error_category(exc), None, took())
    except Exception:  # noqa: BLE001 - logged here; the attempt counts as failed
        log.exception("webhook_send_error", event_id=item.event_id)
        return Outcome(None, "request failed", None, took())
    text = body.decode("utf-8", errors="replace")[:RESPONSE_BODY_CHARS]
    return Outcome(response.status_code, None if response.is_success else f"HTTP {response.status_code}", text, took())


async def record(
    session: AsyncSession, item: Claimed, outcome: Outcome, now: datetime, settings: Settings, failures_before: int = 0
) -> datetime | None:
    """Log the attempt and move the event on: delivered, retried later, or failed after the window.

    ``failures_before``: the endpoint's consecutive failed attempts before this one. After a failure the
    endpoint is held (module doc, "Per-endpoint backoff") and the time it is held until is returned; None after
    a success, or when the event or its endpoint is gone.
    """
    event = await session.scalar(select(WebhookEvent).where(WebhookEvent.id == item.webhook_event_id))
    if event is None:  # the endpoint was deleted meanwhile (its events go with it)
        return None
    session.add(
        WebhookDelivery(
            id=str(uuid.uuid4()),
            endpoint_id=event.endpoint_id,
            webhook_event_id=event.id,
            event_id=event.event_id,
            type=event.type,
            attempt=item.attempt,
            created_at=now,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            succeeded=outcome.succeeded,
            error=outcome.error,
            response_body=outcome.response_body,
        )
    )
    if outcome.succeeded:
        if event.state != repository.DELIVERED:
            event.state = repository.DELIVERED
            event.delivered_at = now
        await session.flush()
        return None
    held_until = now + timedelta(seconds=retry_delay(settings, failures_before + 1))
    if event.state == repository.SENDING:  # not delivered, failed or re-queued by someone else meanwhile
        next_at = max(now + timedelta(seconds=retry_delay(settings, item.attempt)), held_until + BEHIND)
        if next_at > event.give_up_at:
            event.state = repository.FAILED
            metrics.WEBHOOK_EVENTS_FAILED.inc()
        else:
            event.state = repository.PENDING
            event.next_attempt_at = next_at
    await session.flush()
    await repository.hold_endpoint(session, event.endpoint_id, held_until, now, except_event_id=event.id)
    return held_until


class DeliveryPool:
    """The deliveries in flight in this process: at most ``webhook_max_concurrent_deliveries`` places.

    :meth:`fill` claims as many ready events as there are free places and starts a task on each. A task sends
    its event, then records the outcome and, after a success, claims the same endpoint's next ready event in
    that one transaction and goes on with it: a run of up to ``run_length`` events (default
    ``webhook_batch_size``), after which the place goes back to :meth:`fill`, which serves the oldest due events
    first across endpoints. When a task ends it sets ``wakeup`` (if given) so the loop fills the freed place.

    Consecutive failures per endpoint and the time each failing endpoint is held until are kept here (held
    endpoints are not claimed from by this process; other processes see the hold on the endpoint's queued
    events, :func:`record`). The events in flight here are never claimed again by this process, nor more of an
    endpoint's than its places, even if the clock passes their lease (the clock of tests jumps; a stalled
    database does too).

    Usage::

        pool = DeliveryPool(sessionmaker, http, settings, clock.now, wakeup)
        started, asked = await pool.fill()
        ...
        await pool.aclose()   # cancels requests in flight; their events are retried after the lease
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], http: httpx.AsyncClient, settings: Settings,
                 now: Callable[[], datetime], wakeup: asyncio.Event | None = None, run_length: int | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.http = http
        self.settings = settings
        self.now = now
        self.wakeup = wakeup
        self.run_length = run_length or settings.webhook_batch_size
        self._tasks: set[asyncio.Task[None]] = set()
        self._sending: dict[str, set[str]] = {}  # endpoint id -> ids of its events in flight here
        self._failures: dict[str, int] = {}
        self._held: dict[str, datetime] = {}

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def free(self) -> int:
        return max(0, self.settings.webhook_max_concurrent_deliveries - len(self._tasks))

    def held_endpoints(self, now: datetime) -> list[str]:
        """Endpoints held after a failure until a time after ``now``."""
        for endpoint_id in [e for e, until in self._held.items() if until <= now]:
            del self._held[endpoint_id]
        return list(self._held)

    def _sending_ids(self) -> list[str]:
        return [i for ids in self._sending.values() for i in ids]

    def _start(self, item: Claimed) -> None:
        self._sending.setdefault(item.endpoint_id, set()).add(item.webhook_event_id)

    def _stop(self, item: Claimed) -> None:
        ids = self._sending.get(item.endpoint_id)
        if ids is not None:
            ids.discard(item.webhook_event_id)
            if not ids:
                del self._sending[item.endpoint_id]

    async def fill(self) -> tuple[int, int]:
        """Claim up to ``min(free places, webhook_batch_size)`` ready events and start sending them.
        Returns ``(started, asked)``: ``started == asked > 0`` means more may be ready."""
        asked = min(self.free, self.settings.webhook_batch_size)
        if asked == 0:
            return 0, 0
        now = self.now()
        full = [e for e, ids in self._sending.items() if len(ids) >= self.settings.webhook_max_in_flight_per_endpoint]
        skip_endpoints = self.held_endpoints(now) + full
        skip_events = self._sending_ids()
        async def claim(session: AsyncSession) -> list[Claimed]:
            await repository.commit_without_flush_wait(session)
            return await claim_ready(session, now, self.settings, asked, skip_endpoints, skip_events)

        claimed = await in_transaction(self.sessionmaker, claim)
        for item in claimed:
            self._start(item)
            task = asyncio.create_task(self._run(item), name=f"webhook-{item.endpoint_id}")
            self._tasks.add(task)
            task.add_done_callback(self._finished)
        return len(claimed), asked

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self.wakeup is not None:
            self.wakeup.set()

    async def _run(self, item: Claimed | None) -> None:
        """Send ``item``, then the endpoint's next ready events while they succeed, up to ``run_length``."""
        sent = 0
        try:
            while item is not None:
                current: Claimed = item
                outcome = await send(self.http, current, self.now(), self.settings.webhook_timeout_seconds)
                sent += 1
                go_on = outcome.succeeded and sent < self.run_length
                failures = self._failures.get(current.endpoint_id, 0)
                skip = [i for i in self._sending_ids() if i != current.webhook_event_id]

                async def record_and_next(session: AsyncSession) -> tuple[datetime | None, Claimed | None]:
                    await repository.commit_without_flush_wait(session)
                    now = self.now()
                    held_until = await record(session, current, outcome, now, self.settings, failures)
                    if not go_on:
                        return held_until, None
                    return held_until, await claim_next(session, current.endpoint_id, now, self.settings, skip)

                try:
                    held_until, item = await in_transaction(self.sessionmaker, record_and_next)
                except Exception:  # noqa: BLE001 - the lease runs out and the event is sent again
                    log.exception("webhook_record_error", event_id=current.event_id)
                    item = None
                else:
                    self._note(current, outcome, failures, held_until)
                self._stop(current)
                if item is not None:
                    self._start(item)
        finally:
            if item is not None:
                self._stop(item)

    def _note(self, item: Claimed, outcome: Outcome, failures: int, held_until: datetime | None) -> None:
        if outcome.succeeded:
            self._failures.pop(item.endpoint_id, None)
            self._held.pop(item.endpoint_id, None)
        else:
            self._failures[item.endpoint_id] = failures + 1
            if held_until is not None:
                self._held[item.endpoint_id] = held_until
        metrics.WEBHOOK_ATTEMPTS.labels("delivered" if outcome.succeeded else "failed").inc()
        log.info("webhook_attempt", event_id=item.event_id, type=item.type, attempt=item.attempt,
                 status=outcome.status_code, error=outcome.error, ms=outcome.duration_ms)

    async def join(self) -> None:
        """Wait until every delivery started so far has been recorded."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel the deliveries in flight (their rows stay leased: sent again after the lease)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def deliver_due(
    sessionmaker: async_sessionmaker[AsyncSession], http: httpx.AsyncClient, settings: Settings,
    now: Callable[[], datetime],
) -> int:
    """One round: claim the events that may be sent now (:meth:`DeliveryPool.fill`), send them concurrently,
    record the outcomes (one event per claimed place: no runs). Returns how many were sent."""
    pool = DeliveryPool(sessionmaker, http, settings, now, run_length=1)
    started, _ = await pool.fill()
    await pool.join()
    return started
