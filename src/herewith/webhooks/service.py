"""Rules of webhooks (CONTRACT.md, "Webhooks"). No HTTP here; services take the session first and never commit.

- Endpoints: create (returns the secret once), list, get, update, delete, rotate the secret. A URL is saved
  only if the target policy accepts it (:mod:`herewith.webhooks.targets`).
- :func:`enqueue`: write an event into the outbox, one row per subscribed endpoint, inside the caller's
  transaction (the same one as the state change the event reports), so a crash loses nothing.
- Redelivery: put an event back in the queue with the same event id and body.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from herewith.errors import NotFound, validation_error
from herewith.kit.pagination import decode_seq_cursor, page_of
from herewith.kit.time import format_utc
from herewith.webhooks import repository
from herewith.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from herewith.webhooks.schemas import (
    EVENT_TYPES,
    CreateWebhookRequest,
    DeliveryOut,
    UpdateWebhookRequest,
    WebhookOut,
)
from herewith.webhooks.signing import compact_json
from herewith.webhooks.targets import TargetPolicy, TargetRefused

API_VERSION = "1.0"
SECRET_PREFIX = "whsec_"
DEFAULT_RETRY_WINDOW = timedelta(hours=24)


def generate_secret() -> str:
    """A signing secret: ``whsec_`` + 43 URL-safe characters (256 bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_target(policy: TargetPolicy, url: str) -> None:
    """:class:`~herewith.errors.BadRequest` naming ``url`` unless ``policy`` accepts it as a webhook target
    (:meth:`TargetPolicy.check_url`: http(s), a host, no credentials, no refused address in any IP form, not
    this server)."""
    try:
        policy.check_url(url)
    except TargetRefused as exc:
        raise validation_error("url", str(exc)) from None


async def create_endpoint(
    session: AsyncSession, organization_id: str, request: CreateWebhookRequest, now: datetime, policy: TargetPolicy
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (the caller shows ``endpoint.secret`` once). ``request.url`` must pass
    ``policy`` (:func:`check_target`; 400 naming ``url`` otherwise)."""
    check_target(policy, request.url)
    endpoint = WebhookEndpoint(
        id=str(uuid.uuid4()),
        organization_id=organization_id,
        url=request.url,
        events=list(request.events or EVENT_TYPES),
        description=request.description,
        secret=generate_secret(),
        enabled=True,
        created_at=now,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def set_room_endpoints(session: AsyncSession, organization_id: str, meeting_id: str,
                             targets: dict[str, list[str]], now: datetime, policy: TargetPolicy,
                             description: str) -> list[WebhookEndpoint]:
    """Make the endpoints of one room (per-room webhook URLs) be ``targets`` (``{url: [event types]}``): an
    endpoint whose URL stays keeps its id and signing secret and takes the new event types, the others are
    deleted (with their outbox rows) or created with a fresh secret. Each URL must pass ``policy``
    (:func:`check_target`: a 400 naming ``url``). Their events go through the same outbox, signing, retries
    and delivery log as the organization's endpoints; ``GET /v1/webhooks`` lists them (``description``)."""
    for url in targets:
        check_target(policy, url)
    existing = {e.url: e for e in await repository.room_endpoints(session, meeting_id)}
    kept: list[WebhookEndpoint] = []
    for url, endpoint in existing.items():
        if url not in targets:
            await session.delete(endpoint)
    for url, events in targets.items():
        endpoint = existing.get(url)
        if endpoint is None:
            endpoint = WebhookEndpoint(id=str(uuid.uuid4()), organization_id=organization_id, url=url,
                                       secret=generate_secret(), enabled=True, created_at=now, meeting_id=meeting_id)
            session.add(endpoint)
        endpoint.events = sorted(set(events))
        endpoint.description = description[:200]
        kept.append(endpoint)
    await session.flush()
    return kept


async def get_endpoint(session: AsyncSession, organization_id: str, endpoint_id: str) -> WebhookEndpoint:
    """The organization's endpoint; :class:`NotFound` for unknown or foreign ids."""
    endpoint = await repository.get_endpoint(session, organization_id, endpoint_id)
    if endpoint is None:
        raise NotFound()
    return endpoint


async def list_endpoints(
    session: AsyncSession, organization_id: str, cursor: str | None, limit: int
) -> tuple[list[WebhookEndpoint], str | None]:
    rows = await repository.list_endpoints(session, organization_id, decode_seq_cursor(cursor), limit + 1)
    return page_of(rows, limit, key=lambda row: row.seq)


async def update_endpoint(
    session: AsyncSession, organization_id: str, endpoint_id: str, request: UpdateWebhookRequest, policy: TargetPolicy
) -> WebhookEndpoint:
    """Change the fields given; a new ``url`` must pass ``policy`` (:func:`check_target`; 400 naming ``url``)."""
    endpoint = await get_endpoint(session, organization_id, endpoint_id)
    if request.url is not None:
        check_target(policy, request.url)
        endpoint.url = request.url
    if request.events is not None:
        endpoint.events = list(request.events)
    if request.description is not None:
        endpoint.description = request.description
    if request.enabled is not None:
        endpoint.enabled = request.enabled
    await session.flush()
    return endpoint


async def delete_endpoint(session: AsyncSession, organization_id: str, endpoint_id: str) -> bool:
    """Delete the endpoint with its queue and log. Idempotent: unknown or foreign ids are a no-op (False)."""
    endpoint = await repository.get_endpoint(session, organization_id, endpoint_id)
    if endpoint is None:
        return False
    await session.delete(endpoint)
    await session.flush()
    return True


async def rotate_secret(session: AsyncSession, organization_id: str, endpoint_id: str) -> WebhookEndpoint:
    """Replace the secret at once; events not yet delivered are signed with the new one when they go out."""
    endpoint = await get_endpoint(session, organization_id, endpoint_id)
    endpoint.secret = generate_secret()
    await session.flush()
    return endpoint


async def list_deliveries(
    session: AsyncSession, organization_id: str, endpoint_id: str, cursor: str | None, limit: int
) -> tuple[list[WebhookDelivery], str | None]:
    """The endpoint's delivery attempts, newest first."""
    await get_endpoint(session, organization_id, endpoint_id)
    rows = await repository.list_deliveries(session, endpoint_id, decode_seq_cursor(cursor), limit + 1)
    return page_of(rows, limit, key=lambda row: row.seq)


async def redeliver(
    session: AsyncSession, organization_id: str, endpoint_id: str, event_id: str, now: datetime,
    retry_window: timedelta = DEFAULT_RETRY_WINDOW,
) -> WebhookEvent:
    """Queue the event again for that endpoint, now, with the same id and body (and a new retry window)."""
    await get_endpoint(session, organization_id, endpoint_id)
    event = await repository.get_event_for_endpoint(session, endpoint_id, event_id)
    if event is None:
        raise NotFound()
    event.state = "pending"
    event.next_attempt_at = now
    event.give_up_at = now + retry_window
    await session.flush()
    return event


def envelope(event_id: str, type_: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """The contract's envelope ``{id, apiVersion, createdAt, type, data}``."""
    return {"id": event_id, "apiVersion": API_VERSION, "createdAt": format_utc(at), "type": type_, "data": data}


async def enqueue(
    session: AsyncSession,
    organization_id: str,
    type_: str,
    data: dict[str, Any],
    at: datetime,
    meeting_id: str | None = None,
    retry_window: timedelta = DEFAULT_RETRY_WINDOW,
    endpoints: Sequence[WebhookEndpoint] | None = None,
) -> str | None:
    """Write ``type_`` into the outbox for every enabled endpoint of the organization that wants it.

    Runs in the caller's transaction. Returns the event id, or None when no endpoint wants the event.
    The body is fixed here (compact JSON) and sent unchanged on every attempt.
    """
    if endpoints is None:
        endpoints = await repository.enabled_endpoints(session, organization_id, meeting_id)
    wanting = [e for e in endpoints if type_ in (e.events or ())]
    if not wanting:
        return None
    event_id = str(uuid.uuid4())
    body = compact_json(envelope(event_id, type_, at, data)).decode()
    for endpoint in wanting:
        session.add(
            WebhookEvent(
                id=str(uuid.uuid4()),
                event_id=event_id,
                endpoint_id=endpoint.id,
                organization_id=organization_id,
                meeting_id=meeting_id,
                type=type_,
                payload=body,
                created_at=at,
                state="pending",
                attempts=0,
                next_attempt_at=at,
                give_up_at=at + retry_window,
            )
        )
    await session.flush()
    return event_id


async def purge_old_events(session: AsyncSession, before: datetime) -> int:
    """Remove delivered and failed events created before ``before`` with their delivery rows; pending and
    sending ones stay."""
    result = await session.execute(
        delete(WebhookEvent).where(WebhookEvent.created_at < before,
                                   WebhookEvent.state.in_((repository.DELIVERED, repository.FAILED)))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def to_out(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        webhookId=endpoint.id,
        url=endpoint.url,
        events=list(endpoint.events),
        description=endpoint.description,
        enabled=endpoint.enabled,
        createdAt=format_utc(endpoint.created_at),
    )


def delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        deliveryId=delivery.id,
        eventId=delivery.event_id,
        type=delivery.type,
        attempt=delivery.attempt,
        createdAt=format_utc(delivery.created_at),
        durationMs=delivery.duration_ms,
        statusCode=delivery.status_code,
        succeeded=delivery.succeeded,
        error=delivery.error,
    )
