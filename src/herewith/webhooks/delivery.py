"""The delivery worker: take due events from the outbox, POST them signed, log every attempt.

- At least once: a worker claims a row by pushing its ``next_attempt_at`` forward by a lease (timeout plus
  ``webhook_lease_slack_seconds``) and commits before sending; a crash mid-send leaves the row to be retried
  once the lease passes.
  The event id and body are the same on every attempt.
- PostgreSQL: rows are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``, so several processes share the
  queue; SQLite: one writer at a time and a conditional update per row.
- Failure (non-2xx, network error, timeout after ``webhook_timeout_seconds``): retry after
  ``base * 2**(attempt-1)`` seconds, capped at ``webhook_retry_max_interval_seconds``, until
  ``webhook_retry_window_seconds`` (24 h) after the event; then the event is ``failed``.
- Time comes from a clock (the process's :class:`~herewith.kit.time.Clock`) so tests move it instead of sleeping.

:func:`deliver_due` is the testable inner function; :func:`herewith.jobs.webhook_delivery.run_webhook_delivery`
is the loop started with the app.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.config import Settings
from herewith.db.transactions import in_transaction
from herewith.webhooks import repository
from herewith.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from herewith.webhooks.signing import SIGNATURE_HEADERS, sign

log = structlog.get_logger(__name__)

USER_AGENT = "Herewith-Webhooks/1.0"


@dataclass(frozen=True)
class Claimed:
    webhook_event_id: str
    event_id: str
    type: str
    attempt: int
    payload: bytes
    url: str
    secret: str


@dataclass(frozen=True)
class Outcome:
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


async def claim_due(session: AsyncSession, now: datetime, settings: Settings) -> list[Claimed]:
    """Claim up to ``webhook_batch_size`` due events (caller commits right after)."""
    lease_until = now + timedelta(seconds=settings.webhook_timeout_seconds + settings.webhook_lease_slack_seconds)
    claimed: list[Claimed] = []
    for event in await repository.due_events(session, now, settings.webhook_batch_size):
        if not await repository.claim(session, event, event.next_attempt_at, lease_until):
            continue
        endpoint = await session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == event.endpoint_id))
        if endpoint is None:
            continue
        claimed.append(
            Claimed(
                webhook_event_id=event.id,
                event_id=event.event_id,
                type=event.type,
                attempt=event.attempts + 1,
                payload=event.payload.encode(),
                url=endpoint.url,
                secret=endpoint.secret,
            )
        )
    return claimed


async def send(http: httpx.AsyncClient, item: Claimed, now: datetime, timeout: float) -> Outcome:
    """POST one event; never raises."""
    signature = sign(item.secret, item.payload, int(now.timestamp()))
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "Herewith-Event-Id": item.event_id}
    headers.update({name: signature for name in SIGNATURE_HEADERS})
    started = time.monotonic()
    try:
        response = await http.post(item.url, content=item.payload, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        return Outcome(None, f"timeout after {timeout:g} s", None, int((time.monotonic() - started) * 1000))
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:500], None, int((time.monotonic() - started) * 1000))
    return Outcome(response.status_code, None if response.is_success else f"HTTP {response.status_code}",
                   response.text[:1000], int((time.monotonic() - started) * 1000))


async def record(session: AsyncSession, item: Claimed, outcome: Outcome, now: datetime, settings: Settings) -> None:
    """Log the attempt and move the event on: delivered, retried later, or failed after the window."""
    event = await session.scalar(select(WebhookEvent).where(WebhookEvent.id == item.webhook_event_id))
    if event is None:  # the endpoint was deleted meanwhile
        return
    endpoint_exists = await session.scalar(select(WebhookEndpoint.id).where(WebhookEndpoint.id == event.endpoint_id))
    if endpoint_exists is None:
        return
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
        event.state = "delivered"
        event.delivered_at = now
    else:
        next_at = now + timedelta(seconds=retry_delay(settings, item.attempt))
        if next_at > event.give_up_at:
            event.state = "failed"
        else:
            event.next_attempt_at = next_at
    await session.flush()


async def deliver_due(
    sessionmaker: async_sessionmaker[AsyncSession], http: httpx.AsyncClient, settings: Settings,
    now: Callable[[], datetime],
) -> int:
    """One round: claim due events, send them concurrently, record the outcomes. Returns how many were sent."""
    claimed = await in_transaction(sessionmaker, lambda s: claim_due(s, now(), settings))
    if not claimed:
        return 0
    # Endpoints are served concurrently; one endpoint's events go one after another, in event order.
    by_url: dict[str, list[int]] = {}
    for index, item in enumerate(claimed):
        by_url.setdefault(item.url, []).append(index)
    outcomes: list[Outcome] = [Outcome(None, "not sent", None, 0)] * len(claimed)

    async def serve(indices: list[int]) -> None:
        for index in indices:
            outcomes[index] = await send(http, claimed[index], now(), settings.webhook_timeout_seconds)

    await asyncio.gather(*(serve(indices) for indices in by_url.values()))

    async def record_all(session: AsyncSession) -> None:
        for item, outcome in zip(claimed, outcomes):
            await record(session, item, outcome, now(), settings)

    await in_transaction(sessionmaker, record_all)
    for item, outcome in zip(claimed, outcomes):
        log.info("webhook_attempt", event_id=item.event_id, type=item.type, attempt=item.attempt,
                 status=outcome.status_code, error=outcome.error)
    return len(claimed)
