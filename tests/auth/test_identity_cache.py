"""The authenticator's identity cache and the key check in MeetingStore's statements, on SQLite and
PostgreSQL: an unverified principal (a key identity from the cache) is refused, in the same statement that
would have done the work, once its key is revoked; room-name collisions and revoked keys in one batch are
told apart; cached identities expire after ``identity_ttl``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from uuid6 import uuid7

from herewith.auth import service as auth_service
from herewith.auth.models import Organization, OrganizationRef, Principal
from herewith.auth.service import ApiKeyAuthenticator
from herewith.config import Settings
from herewith.db.engine import create_engine, create_hot_engine, create_sessionmaker, sqlite_path
from herewith.db.migrate import upgrade
from herewith.db.sqlite_inline import InlineReader
from herewith.errors import Unauthorized
from herewith.meetings.service import MeetingStore, RoomNameTaken

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
async def engines(settings: Settings) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    engine = create_engine(settings)
    await upgrade(engine)
    hot = create_hot_engine(settings, engine)
    try:
        yield engine, hot
    finally:
        if hot is not engine:
            await hot.dispose()
        await engine.dispose()


async def _key(engine: AsyncEngine, organization_id: str | None = None) -> tuple[str, str, str]:
    """(organization id, key id, plaintext key); a new organization unless one is given."""
    async with create_sessionmaker(engine)() as session:
        if organization_id is None:
            organization_id = (await auth_service.create_organization(session, "Cache", "grow")).id
        row, plaintext = await auth_service.create_api_key(session, organization_id)
        await session.commit()
        return organization_id, row.id, plaintext


async def _revoke(engine: AsyncEngine, key_id: str) -> None:
    async with create_sessionmaker(engine)() as session:
        await auth_service.revoke_api_key(session, key_id)
        await session.commit()


def _row(organization_id: str, room_name: str) -> dict:
    return {"id": str(uuid7()), "organization_id": organization_id, "room_name": room_name, "room_mode": "normal",
            "is_locked": False, "template_type": None, "start_date": NOW, "end_date": NOW + timedelta(hours=1),
            "recording": {"type": "cloud", "destination": {"provider": "s3"}}, "live_transcription": None,
            "streaming": None, "deactivated_at": None, "deleted_at": None}


async def test_identify_serves_cached_identities_for_identity_ttl(engines) -> None:  # noqa: ANN001
    engine, hot = engines
    org_id, key_id, key = await _key(engine)
    auth = ApiKeyAuthenticator(hot, identity_ttl=0.3)
    first = await auth.identify(f"Bearer {key}")
    assert (first.key_id, first.organization.id, first.verified) == (key_id, org_id, True)
    second = await auth.identify(f"Bearer {key}")
    assert (second.key_id, second.organization, second.verified) == (key_id, first.organization, False)
    assert (await auth.authenticate(f"Bearer {key}")).verified  # authenticate never answers from the cache

    # The plan is read again once the identity is older than identity_ttl.
    async with engine.begin() as conn:
        await conn.execute(update(Organization).where(Organization.id == org_id).values(rate_limit_points=7))
    assert (await auth.identify(f"Bearer {key}")).organization.rate_limit_points is None
    await asyncio.sleep(0.35)
    fresh = await auth.identify(f"Bearer {key}")
    assert (fresh.verified, fresh.organization.rate_limit_points) == (True, 7)

    # A revoked key found by a check leaves the cache at once.
    await _revoke(engine, key_id)
    with pytest.raises(Unauthorized):
        await auth.authenticate(f"Bearer {key}")
    with pytest.raises(Unauthorized):
        await auth.identify(f"Bearer {key}")
    with pytest.raises(Unauthorized):
        await auth.identify("Bearer hw_not-a-key")


async def test_an_unverified_principal_of_a_revoked_key_creates_and_reads_nothing(engines) -> None:  # noqa: ANN001
    engine, hot = engines
    org_id, live_key, _ = await _key(engine)
    _, dead_key, _ = await _key(engine, org_id)
    _, foreign_key, _ = await _key(engine)  # another organization's key, for org_id's rows
    store = MeetingStore(hot)
    ref = OrganizationRef(org_id, "grow")
    live, dead, foreign = (Principal(k, ref, verified=False) for k in (live_key, dead_key, foreign_key))
    taken = _row(org_id, "/taken-room")
    await store.insert(taken, live)
    assert (await store.get_live(dead, taken["id"])).room_name == "/taken-room"
    await _revoke(engine, dead_key)

    # One batch (inserted together, in the same event-loop tick): a new row, a taken room name, a revoked
    # key's row, and a row whose key is another organization's.
    rows = [_row(org_id, "/fresh-room"), _row(org_id, "/taken-room"), _row(org_id, "/dead-room"),
            _row(org_id, "/foreign-room")]
    outcomes = await asyncio.gather(*(store.insert(r, p) for r, p in zip(rows, (live, live, dead, foreign))),
                                    return_exceptions=True)
    assert outcomes[0] is None
    assert isinstance(outcomes[1], RoomNameTaken)
    assert isinstance(outcomes[2], Unauthorized) and isinstance(outcomes[3], Unauthorized)

    read = await asyncio.gather(*(store.get_live(live, r["id"]) for r in rows), store.get_live(dead, taken["id"]),
                                store.get_live(foreign, taken["id"]))
    assert read[0] is not None and read[0].room_name == "/fresh-room" and read[0].end_date == rows[0]["end_date"]
    assert read[1:] == [None] * 5  # not stored (x3), then the revoked and the foreign key read nothing
    assert (await store.get_live(live, taken["id"])).room_name == "/taken-room"


async def test_sqlite_point_read_refuses_a_revoked_key(engines, settings, db_kind) -> None:  # noqa: ANN001
    if db_kind != "sqlite":
        pytest.skip("SQLite's point reads")
    engine, hot = engines
    reader = InlineReader(sqlite_path(settings.sqlalchemy_url))
    try:
        org_id, key_id, key = await _key(engine)
        auth, store = ApiKeyAuthenticator(hot, inline=reader), MeetingStore(hot, inline=reader)
        assert [(await auth.identify(f"Bearer {key}")).verified for _ in range(2)] == [True, False]
        principal = await auth.identify(f"Bearer {key}")
        row = _row(org_id, "/inline-room")
        await store.insert(row, principal)
        assert (await store.get_live(principal, row["id"])).room_name == "/inline-room"
        await _revoke(engine, key_id)
        assert await store.get_live(principal, row["id"]) is None
        with pytest.raises(Unauthorized):
            await store.insert(_row(org_id, "/another-room"), principal)
        with pytest.raises(Unauthorized):
            await auth.authenticate(f"Bearer {key}")
    finally:
        reader.close()
