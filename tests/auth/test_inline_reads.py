"""SQLite's synchronous point reads (herewith.db.sqlite_inline.InlineReader) for API keys and meetings:
same answers as the batched path, the newest commit always visible, and a fall-back to the async path
when SQLite refuses the read."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from herewith.auth import service as auth_service
from herewith.auth.service import ApiKeyAuthenticator
from herewith.config import Settings
from herewith.db.engine import create_engine, create_sessionmaker, sqlite_path
from herewith.db.migrate import upgrade
from herewith.db.sqlite_inline import InlineReadUnavailable, InlineReader
from herewith.errors import Unauthorized
from herewith.meetings.schemas import CreateMeetingRequest
from herewith.meetings.service import MeetingStore, create_meeting


@pytest.fixture
async def sqlite_db(tmp_path: Path):  # noqa: ANN201
    settings = Settings(data_dir=tmp_path / "data", database_url=None)
    engine = create_engine(settings)
    await upgrade(engine)
    reader = InlineReader(sqlite_path(settings.sqlalchemy_url))
    try:
        yield engine, reader, sqlite_path(settings.sqlalchemy_url)
    finally:
        reader.close()
        await engine.dispose()


async def _org_with_key(engine) -> tuple[str, str, str]:  # noqa: ANN001
    async with create_sessionmaker(engine)() as session:
        org = await auth_service.create_organization(session, "Inline", "build")
        key_row, key = await auth_service.create_api_key(session, org.id)
        await session.commit()
        return org.id, key_row.id, key


async def test_inline_and_batched_authentication_agree_and_see_a_revocation_at_once(sqlite_db) -> None:  # noqa: ANN001
    engine, reader, _ = sqlite_db
    org_id, key_id, key = await _org_with_key(engine)
    inline, batched = ApiKeyAuthenticator(engine, inline=reader), ApiKeyAuthenticator(engine)
    for auth in (inline, batched):
        principal = await auth.authenticate(f"Bearer {key}")
        org = principal.organization
        assert (principal.key_id, principal.verified) == (key_id, True)
        assert (org.id, org.plan, org.rate_limit_points) == (org_id, "build", None)
        with pytest.raises(Unauthorized):
            await auth.authenticate("Bearer hw_not-a-key")
    async with create_sessionmaker(engine)() as session:
        await auth_service.revoke_api_key(session, key_id)
        await session.commit()
    for auth in (inline, batched):
        with pytest.raises(Unauthorized):
            await auth.authenticate(f"Bearer {key}")


async def test_inline_meeting_read_matches_the_batched_read(sqlite_db) -> None:  # noqa: ANN001
    engine, reader, _ = sqlite_db
    org_id, _, key = await _org_with_key(engine)
    principal = await ApiKeyAuthenticator(engine).authenticate(f"Bearer {key}")
    now = datetime.now(timezone.utc)
    store_inline, store_batched = MeetingStore(engine, inline=reader), MeetingStore(engine)
    body = CreateMeetingRequest.model_validate({"endDate": (now + timedelta(hours=2)).isoformat(), "templateType": "viewerMode"})
    created = await create_meeting(store_batched, principal, body, now)
    a = await store_inline.get_live(principal, created.id)
    b = await store_batched.get_live(principal, created.id)
    assert a is not None and b is not None
    for field in ("id", "room_name", "template_type", "start_date", "end_date"):
        assert getattr(a, field) == getattr(b, field)
    assert a.end_date.tzinfo is not None and a.end_date == body.endDate
    _, _, other_key = await _org_with_key(engine)
    stranger = await ApiKeyAuthenticator(engine).authenticate(f"Bearer {other_key}")  # another organization's key
    assert await store_inline.get_live(stranger, created.id) is None
    assert await store_batched.get_live(stranger, created.id) is None
    assert await store_inline.get_live(principal, "no-such-id") is None


async def test_an_inline_read_that_sqlite_refuses_falls_back_to_the_async_path(sqlite_db, tmp_path: Path) -> None:  # noqa: ANN001
    engine, _, _ = sqlite_db
    org_id, _, key = await _org_with_key(engine)
    broken = InlineReader(tmp_path / "no-such-dir" / "herewith.db")  # SQLite: unable to open database file
    with pytest.raises(InlineReadUnavailable):
        broken.all("SELECT 1", ())
    principal = await ApiKeyAuthenticator(engine, inline=broken).authenticate(f"Bearer {key}")
    assert principal.organization.id == org_id
    store = MeetingStore(engine, inline=broken)
    assert await store.get_live(principal, "no-such-id") is None
