"""SQLite's WAL under a steady stream of writes: the checkpointer starts it over, so it stays small.

Without the writer-held second checkpoint, each checkpoint copies what was there when it began while new
frames are appended, SQLite never starts the WAL over, and the file grows for as long as writes go on."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from herewith.auth import service as auth_service
from herewith.config import Settings
from herewith.db.engine import create_engine, create_sessionmaker, sqlite_path, writer_lock
from herewith.db.migrate import upgrade
from herewith.db.sqlite_inline import run_checkpointer
from herewith.meetings.schemas import CreateMeetingRequest
from herewith.meetings.service import MeetingStore, create_meeting
from herewith.auth.models import OrganizationRef, Principal


async def _write_for(seconds: float, engine, checkpointer_writer) -> tuple[int, int]:  # noqa: ANN001
    """Create meetings back to back (yielding to the loop between them, as a server does) for ``seconds``
    with the checkpointer running every 50 ms; returns (meetings, largest WAL file size seen)."""
    path = sqlite_path(str(engine.url))
    async with create_sessionmaker(engine)() as session:
        org = await auth_service.create_organization(session, "WAL", "grow")
        key, _ = await auth_service.create_api_key(session, org.id)
        await session.commit()
    principal = Principal(key.id, OrganizationRef(org.id, org.plan))
    store = MeetingStore(engine)
    now = datetime.now(timezone.utc)
    body = CreateMeetingRequest.model_validate({"endDate": (now + timedelta(days=1)).isoformat()})
    task = asyncio.create_task(run_checkpointer(path, 0.05, writer=checkpointer_writer, restart_frames=64))
    created, largest = 0, 0
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.gather(*(create_meeting(store, principal, body, now) for _ in range(8)))
            created += 8
            largest = max(largest, os.path.getsize(path + "-wal"))
            await asyncio.sleep(0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return created, largest


async def test_the_wal_is_started_over_under_steady_writes(tmp_path: Path) -> None:
    engine = create_engine(Settings(data_dir=tmp_path / "data", database_url=None))
    try:
        await upgrade(engine)
        created, largest = await _write_for(3.0, engine, writer_lock(engine))
    finally:
        await engine.dispose()
    # 3 s of writes put about 10 kB per meeting through the WAL (270 MB for 28,000 meetings when it was
    # never started over); started over every 50 ms, the file stays a few MB.
    assert created > 1000
    assert largest < 32 * 1024 * 1024, (created, largest)
