"""Rules for organizations and API keys. Services take the session first and never commit."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone

from aiodataloader import DataLoader
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from herewith.auth import repository
from herewith.auth.models import ApiKey, Organization, Principal
from herewith.db.sqlite_inline import InlineReadUnavailable, InlineReader
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


class ApiKeyAuthenticator:
    """Resolves ``Authorization: Bearer <key>`` headers to principals (CONTRACT.md, "Authentication").

    :meth:`authenticate` checks the key against the database with a query that starts after the request
    arrived, so a revoked key is refused on the very next request, in every process. Requests that arrive
    together share that query: keys asked for in the same event-loop tick are looked up with one
    ``IN (...)`` query (aiodataloader's batching, no caching). On SQLite, with ``inline``
    (:class:`~herewith.db.sqlite_inline.InlineReader`), the key is looked up synchronously instead: a point
    read on the loop thread costs less than any batching.

    :meth:`identify` is for the calls whose own statement checks the key again (``POST /v1/meetings`` and
    ``GET /v1/meetings/{id}``, see :class:`~herewith.meetings.service.MeetingStore`). It answers from an
    identity cache: which key and organization a key hash is, as found by :meth:`authenticate` up to
    ``identity_ttl`` seconds ago, returned as an unverified :class:`~herewith.auth.models.Principal`. That
    saves those calls a database round trip each on PostgreSQL (a read transaction on SQLite, 24 µs
    right after a write), while revocation stays immediate, because the work's statement only acts for
    unrevoked keys. What the cache
    can serve stale, for at most ``identity_ttl``, is the organization's plan and custom budget (the rate
    limiter's input). A key's id and organization never change.
    """

    def __init__(self, engine: AsyncEngine, max_batch_size: int = 200, inline: InlineReader | None = None,
                 identity_ttl: float = 1.0, max_identities: int = 10_000) -> None:
        self._engine = engine
        self._inline = inline
        self._loader: DataLoader[str, Principal | None] = DataLoader(
            self._load_batch, cache=False, max_batch_size=max_batch_size
        )
        self._identity_ttl = identity_ttl
        self._max_identities = max_identities
        self._identities: dict[str, tuple[float, Principal]] = {}  # key hash -> (valid until, monotonic s)

    async def _load_batch(self, key_hashes: list[str]) -> list[Principal | None]:
        async with self._engine.connect() as conn:
            found = await repository.principals_by_active_keys(conn, set(key_hashes))
        return [found.get(h) for h in key_hashes]

    @staticmethod
    def _key_hash(authorization: str | None) -> str:
        if not authorization:
            raise Unauthorized()
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 200:
            raise Unauthorized()
        return hash_api_key(token)

    async def _lookup(self, key_hash: str) -> Principal:
        found: Principal | None
        if self._inline is not None:
            try:
                found = repository.principal_by_active_key_inline(self._inline, key_hash)
            except InlineReadUnavailable:
                found = await self._loader.load(key_hash)
        else:
            found = await self._loader.load(key_hash)
        if found is None:
            self._identities.pop(key_hash, None)
            raise Unauthorized()
        if self._identity_ttl > 0:
            if len(self._identities) >= self._max_identities:
                self._identities.clear()  # entries live identity_ttl: a full cache is a burst of new keys
            self._identities[key_hash] = (time.monotonic() + self._identity_ttl,
                                          Principal(found.key_id, found.organization, verified=False))
        return found

    async def authenticate(self, authorization: str | None) -> Principal:
        """The verified principal of the header's key. Raises :class:`Unauthorized` (401, "Access token is
        missing or invalid") for a missing, malformed, unknown or revoked key."""
        return await self._lookup(self._key_hash(authorization))

    async def identify(self, authorization: str | None) -> Principal:
        """The header's principal, possibly unverified (see the class). Raises :class:`Unauthorized` as
        :meth:`authenticate` does, except for a key revoked less than ``identity_ttl`` ago, which may come
        back unverified: the caller's statement refuses it."""
        key_hash = self._key_hash(authorization)
        cached = self._identities.get(key_hash)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return await self._lookup(key_hash)


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
