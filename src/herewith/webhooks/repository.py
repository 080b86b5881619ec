"""All SQL of the webhooks domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from herewith.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent


async def get_endpoint(session: AsyncSession, organization_id: str, endpoint_id: str) -> WebhookEndpoint | None:
    return await session.scalar(
        select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.organization_id == organization_id)
    )


async def list_endpoints(
    session: AsyncSession, organization_id: str | None, after_seq: int | None = None, limit: int | None = None
) -> Sequence[WebhookEndpoint]:
    """Endpoints oldest first (of one organization, or all when ``organization_id`` is None)."""
    stmt = select(WebhookEndpoint)
    if organization_id is not None:
        stmt = stmt.where(WebhookEndpoint.organization_id == organization_id)
    if after_seq is not None:
        stmt = stmt.where(WebhookEndpoint.seq > after_seq)
    stmt = stmt.order_by(WebhookEndpoint.seq)
    if limit is not None:
        stmt = stmt.limit(limit)
    return (await session.scalars(stmt)).all()


async def enabled_endpoints(session: AsyncSession, organization_id: str) -> Sequence[WebhookEndpoint]:
    return (
        await session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.organization_id == organization_id, WebhookEndpoint.enabled.is_(True))
            .order_by(WebhookEndpoint.seq)
        )
    ).all()


async def list_deliveries(
    session: AsyncSession, endpoint_id: str, before_seq: int | None, limit: int
) -> Sequence[WebhookDelivery]:
    """Attempts newest first."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if before_seq is not None:
        stmt = stmt.where(WebhookDelivery.seq < before_seq)
    return (await session.scalars(stmt.order_by(WebhookDelivery.seq.desc()).limit(limit))).all()


async def get_event_for_endpoint(session: AsyncSession, endpoint_id: str, event_id: str) -> WebhookEvent | None:
    return await session.scalar(
        select(WebhookEvent).where(WebhookEvent.endpoint_id == endpoint_id, WebhookEvent.event_id == event_id)
    )


async def due_events(session: AsyncSession, now: datetime, limit: int) -> Sequence[WebhookEvent]:
    """Pending events whose time has come, oldest first, locked for this transaction.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` so several processes take disjoint rows. SQLite has one writer
    at a time and ignores the clause; :func:`claim` re-checks each row so a row is never taken twice.
    """
    stmt = (
        select(WebhookEvent)
        .where(WebhookEvent.state == "pending", WebhookEvent.next_attempt_at <= now)
        .order_by(WebhookEvent.next_attempt_at, WebhookEvent.seq)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(stmt)).all()


async def claim(session: AsyncSession, event: WebhookEvent, seen_next_attempt_at: datetime, lease_until: datetime) -> bool:
    """Move ``next_attempt_at`` to ``lease_until`` if no one else did first; True when this caller owns it now."""
    result = await session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.id == event.id,
            WebhookEvent.state == "pending",
            WebhookEvent.next_attempt_at == seen_next_attempt_at,
        )
        .values(next_attempt_at=lease_until, attempts=WebhookEvent.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1
