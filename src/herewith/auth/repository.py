"""All SQL of the auth domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from herewith.auth.models import ApiKey, Organization, OrganizationRef


async def organization_by_active_key(session: AsyncSession, key_hash: str) -> OrganizationRef | None:
    """The organization of the unrevoked API key whose SHA-256 is ``key_hash``; None when there is no such
    key or it is revoked."""
    row = (await session.execute(
        select(Organization.id, Organization.plan, Organization.rate_limit_points)
        .join(ApiKey, ApiKey.organization_id == Organization.id)
        .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    )).first()
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
