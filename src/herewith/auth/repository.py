"""All SQL of the auth domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from herewith.auth.models import ApiKey, Organization, OrganizationRef

# Built once: SQLAlchemy computes a statement's cache key once per statement object and then finds its
# compiled form in the engine's cache, so each request only binds ``key_hash``.
ORGANIZATION_BY_ACTIVE_KEY = (
    select(Organization.id, Organization.plan, Organization.rate_limit_points)
    .join(ApiKey, ApiKey.organization_id == Organization.id)
    .where(ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None))
)


async def organization_by_active_key(connection: AsyncConnection, key_hash: str) -> OrganizationRef | None:
    """The organization of the unrevoked API key whose SHA-256 is ``key_hash``; None when there is no such
    key or it is revoked. One Core SELECT on ``connection``."""
    row = (await connection.execute(ORGANIZATION_BY_ACTIVE_KEY, {"key_hash": key_hash})).first()
    return OrganizationRef(*row) if row is not None else None


async def get_organization(session: AsyncSession, organization_id: str) -> Organization | None:
    return await session.get(Organization, organization_id)


async def list_organizations(session: AsyncSession) -> Sequence[Organization]:
    return (await session.scalars(select(Organization).order_by(Organization.created_at))).all()


async def count_organizations(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Organization)) or 0)


async def list_keys(session: AsyncSession, organization_id: str | None = None) -> Sequence[ApiKey]:
    stmt = select(ApiKey).order_by(ApiKey.created_at)
    if organization_id:
        stmt = stmt.where(ApiKey.organization_id == organization_id)
    return (await session.scalars(stmt)).all()


async def get_key(session: AsyncSession, key_id: str) -> ApiKey | None:
    return await session.get(ApiKey, key_id)
