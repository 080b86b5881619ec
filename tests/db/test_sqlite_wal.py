"""SQLite through the engine of herewith.db.engine: every connection in WAL with synchronous=NORMAL, foreign
keys and a busy timeout; and the WAL stays small under a steady stream of writes (SQLite's own checkpoints
start it over)."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import text

from herewith.auth import service as auth_service
from herewith.auth.models import OrganizationRef
from herewith.config import Settings
from herewith.db.engine import SQLITE_BUSY_TIMEOUT_S, create_engine, create_sessionmaker
from herewith.db.migrate import upgrade
from herewith.meetings.schemas import CreateMeetingRequest
from herewith.meetings.service import create_meeting


async def test_connections_use_wal_normal_sync_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = create_engine(Settings(data_dir=tmp_path / "data", database_url=None))
    try:
        async with engine.connect() as conn:
            pragmas = [(await conn.execute(text(f"PRAGMA {p}"))).scalar()
                       for p in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")]
    finally:
        await engine.dispose()
    assert pragmas == ["wal", 1, 1, int(SQLITE_BUSY_TIMEOUT_S * 1000)]  # synchronous 1 = NORMAL


async def test_the_wal_stays_small_under_steady_writes(tmp_path: Path) -> None:
    engine = create_engine(Settings(data_dir=tmp_path / "data", database_url=None))
    sessionmaker = create_sessionmaker(engine)
    path = engine.url.database
    try:
        await upgrade(engine)
        async with sessionmaker() as session:
            org = await auth_service.create_organization(session, "WAL", "grow")
            await session.commit()
        ref = OrganizationRef(org.id, org.plan)
        now = datetime.now(timezone.utc)
        body = CreateMeetingRequest.model_validate({"endDate": (now + timedelta(days=1)).isoformat()})

        async def one() -> None:
            async with sessionmaker() as session:
                await create_meeting(session, ref, body, now)
                await session.commit()

        created, largest = 0, 0
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            await asyncio.gather(*(one() for _ in range(8)))  # eight writers at a time, as under load
            created += 8
            largest = max(largest, os.path.getsize(path + "-wal"))
    finally:
        await engine.dispose()
    # About 10 kB of WAL per meeting: never started over, 3 s of writes would leave tens of MB.
    assert created > 200
    assert largest < 16 * 1024 * 1024, (created, largest)
