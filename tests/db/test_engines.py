"""The engines of herewith.db.engine: the read engine's connections commit each statement on its own and
cannot write, and see what the main engine committed at once; SQLite sessions that need the main engine's
one connection get it in the order they asked, none waiting in SQLite's busy handler. On SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from herewith.auth import service as auth_service
from herewith.auth.models import Organization, OrganizationRef
from herewith.config import Settings
from herewith.db.engine import SQLITE_POOL_SIZE, create_engine, create_read_engine, create_sessionmaker, dispose
from herewith.db.migrate import upgrade
from herewith.meetings.models import Meeting
from herewith.meetings.schemas import CreateMeetingRequest
from herewith.meetings.service import create_meeting


async def test_the_read_engine_reads_what_was_committed_and_cannot_write(settings: Settings, db_kind: str) -> None:
    engine, read_engine = create_engine(settings), create_read_engine(settings)
    try:
        await upgrade(engine)
        async with create_sessionmaker(engine)() as session:
            org = await auth_service.create_organization(session, "Readers")
            await session.commit()
        async with read_engine.connect() as conn:
            found = await conn.scalar(select(Organization.name).where(Organization.id == org.id))
            assert found == "Readers"
            with pytest.raises(DBAPIError):
                await conn.execute(text("DELETE FROM organizations"))
            # Each statement is its own transaction: PostgreSQL's now() (the transaction's start) moves on.
            if db_kind == "postgresql":
                first = await conn.scalar(text("SELECT now()"))
                await asyncio.sleep(0.01)
                assert await conn.scalar(text("SELECT now()")) > first
        async with create_sessionmaker(engine)() as session:
            assert await session.scalar(select(func.count()).select_from(Organization)) == 1
    finally:
        await dispose(engine, read_engine)


async def test_the_read_engine_connection_is_in_autocommit(settings: Settings, db_kind: str) -> None:
    read_engine = create_read_engine(settings)
    try:
        async with read_engine.connect() as conn:
            raw = await conn.get_raw_connection()
            if db_kind == "sqlite":
                assert raw.dbapi_connection.isolation_level is None  # sqlite3's autocommit
                assert await conn.scalar(text("PRAGMA query_only")) == 1
            else:
                assert await conn.scalar(text("SHOW default_transaction_read_only")) == "on"
                await conn.execute(text("SELECT 1"))
                assert not raw.driver_connection.is_in_transaction()
    finally:
        await read_engine.dispose()


async def test_sqlite_sessions_get_the_connection_in_the_order_they_asked(settings: Settings, db_kind: str) -> None:
    """Ten sessions write at once, each holding the connection across an await: they run one after the
    other, first come first served, and none fails with "database is locked"."""
    if db_kind != "sqlite":
        pytest.skip("the single-connection SQLite pool")
    assert SQLITE_POOL_SIZE == 1
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    try:
        await upgrade(engine)
        async with sessionmaker() as session:
            org = await auth_service.create_organization(session, "Queue")
            await session.commit()
        ref = OrganizationRef(org.id, org.plan)
        now = datetime.now(timezone.utc)
        body = CreateMeetingRequest.model_validate({"endDate": (now + timedelta(days=1)).isoformat()})
        served: list[int] = []

        async def writer(n: int) -> None:
            await asyncio.sleep(n * 0.005)  # arrive in order
            async with sessionmaker() as session:
                await create_meeting(session, ref, body, now)  # takes the connection
                served.append(n)
                await asyncio.sleep(0.02)  # hold it while the others arrive
                await session.commit()

        await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(10))), timeout=60)
        assert served == list(range(10))
        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(Meeting)) == 10
        assert engine.sync_engine.pool.size() == 1
    finally:
        await engine.dispose()
