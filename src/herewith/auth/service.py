"""Rules for organizations and API keys. Services take the session first and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timezone

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from herewith.auth import repository
from herewith.auth.models import ApiKey, Organization, OrganizationRef
from herewith.errors import NotFound, Unauthorized, validation_error
from herewith.kit.crypto import generate_api_key, hash_api_key

PLANS = {"build": 100, "grow": 1000}


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def create_organization(session: AsyncSession, name: str, plan: str = "grow") -> Organization:
    """Create an organization. ``plan``: ``build`` | ``grow``; raises a 400 otherwise."""
    if plan not in PLANS:
        raise validation_error("plan", "must be one of build, grow")
    org = Organization(id=str(uuid.uuid4()), name=name, plan=plan, created_at=_now())
    session.add(org)
    await session.flush()
    return org


async def create_api_key(session: AsyncSession, organization_id: str, name: str = "") -> tuple[ApiKey, str]:
    """Create a key for the organization; returns the row and the plaintext key (shown once, never stored).

    Raises :class:`NotFound` when the organization does not exist.
    """
    if await repository.get_organization(session, organization_id) is None:
        raise NotFound(f"No organization {organization_id}")
    plaintext = generate_api_key()
    key = ApiKey(
        id=str(uuid.uuid4()),
        organization_id=organization_id,
        name=name,
        prefix=plaintext[:10],
        key_hash=hash_api_key(plaintext),
        created_at=_now(),
    )
    session.add(key)
    await session.flush()
    return key, plaintext


async def revoke_api_key(session: AsyncSession, key_id: str) -> ApiKey:
    """Revoke a key at once (the next request with it is a 401). Raises :class:`NotFound`."""
    key = await repository.get_key(session, key_id)
    if key is None:
        raise NotFound(f"No API key {key_id}")
    if key.revoked_at is None:
        key.revoked_at = _now()
    await session.flush()
    return key


def bearer_token(authorization: str | None) -> str:
    """The key of an ``Authorization: Bearer <key>`` header. Raises :class:`Unauthorized` (401, "Access
    token is missing or invalid") for a missing or malformed header (CONTRACT.md, "Authentication")."""
    if not authorization:
        raise Unauthorized()
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        raise Unauthorized()
    return token


async def authenticate(connection: AsyncConnection, token: str) -> OrganizationRef:
    """The organization of the API key ``token`` (:func:`bearer_token`), read from the database now, so a
    revoked key is refused on its very next request, in every process (CONTRACT.md, "Authentication").

    ``connection`` needs no transaction (the read engine's: :func:`herewith.db.engine.create_read_engine`).
    Raises :class:`Unauthorized` for an unknown or revoked key.
    """
    organization = await repository.organization_by_active_key(connection, hash_api_key(token))
    if organization is None:
        raise Unauthorized()
    return organization


async def ensure_default_organization(session: AsyncSession) -> str | None:
    """On an empty database create the default organization and its first key; return that key once.

    Returns ``None`` when any organization exists already.
    """
    if await repository.count_organizations(session) > 0:
        return None
    org = await create_organization(session, "Default organization")
    _, plaintext = await create_api_key(session, org.id, "first key")
    return plaintext


async def list_organizations(session: AsyncSession) -> Sequence[Organization]:
    return await repository.list_organizations(session)


async def list_api_keys(session: AsyncSession, organization_id: str | None = None) -> Sequence[ApiKey]:
    return await repository.list_keys(session, organization_id)
