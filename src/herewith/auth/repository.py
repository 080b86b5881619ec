"""All SQL of the auth domain."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from herewith.auth.models import ApiKey, Organization, OrganizationRef, Principal
from herewith.db.sqlite_inline import InlineQuery, InlineReader

_orgs, _keys = Organization.__table__, ApiKey.__table__
# Built once: building a statement costs more than running it (about 0.2 ms against 0.02 ms here), and this
# one runs on every /v1 request. Table columns, not ORM attributes, so it runs on the Core path.
_ACTIVE_KEYS = (
    select(_keys.c.key_hash, _keys.c.id, _orgs.c.id, _orgs.c.plan, _orgs.c.rate_limit_points)
    .join(_keys, _keys.c.organization_id == _orgs.c.id)
    .where(_keys.c.revoked_at.is_(None))
)
_ACTIVE_KEYS_ORGANIZATIONS = _ACTIVE_KEYS.where(_keys.c.key_hash.in_(bindparam("key_hashes", expanding=True)))
# One key, for SQLite's synchronous point read (herewith.db.sqlite_inline.InlineReader).
_ACTIVE_KEY_ORGANIZATION_INLINE = InlineQuery(_ACTIVE_KEYS.where(_keys.c.key_hash == bindparam("key_hash")))


_ACTIVE_KEY_IDS = select(_keys.c.id, _keys.c.organization_id).where(_keys.c.id.in_(bindparam("key_ids", expanding=True)),
                                            _keys.c.revoked_at.is_(None))


def principal_by_active_key_inline(reader: InlineReader, key_hash: str) -> Principal | None:
    """The verified principal of an unrevoked API key, read synchronously on SQLite (None: no such active
    key). Raises :class:`~herewith.db.sqlite_inline.InlineReadUnavailable` when SQLite is busy."""
    rows = reader.rows(_ACTIVE_KEY_ORGANIZATION_INLINE, {"key_hash": key_hash})
    return Principal(rows[0][1], OrganizationRef(*rows[0][2:])) if rows else None


async def principals_by_active_keys(conn: AsyncConnection, key_hashes: Iterable[str]) -> dict[str, Principal]:
    """``{key_hash: verified principal}`` for those of ``key_hashes`` that are unrevoked API keys."""
    rows = await conn.execute(_ACTIVE_KEYS_ORGANIZATIONS, {"key_hashes": list(key_hashes)})
    return {row[0]: Principal(row[1], OrganizationRef(row[2], row[3], row[4])) for row in rows}


async def active_keys(conn: AsyncConnection, key_ids: Iterable[str]) -> dict[str, str]:
    """``{key id: organization id}`` for those of ``key_ids`` that are unrevoked API keys."""
    return {row[0]: row[1] for row in await conn.execute(_ACTIVE_KEY_IDS, {"key_ids": list(key_ids)})}


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
