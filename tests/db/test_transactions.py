"""herewith.db.transactions.in_transaction: the whole unit of work runs again after a real SQLite busy error or
a real PostgreSQL deadlock, and other errors (a constraint) are raised at once."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from herewith.db.engine import create_sessionmaker
from herewith.db.transactions import in_transaction


async def test_sqlite_busy_is_retried_and_a_constraint_error_is_not(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
    setup.close()
    # No busy timeout: a held write lock is an immediate SQLITE_BUSY ("database is locked").
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 0})
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    calls = 0

    async def insert(session: AsyncSession) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            blocker.execute("ROLLBACK")  # the other writer is done
        await session.execute(text("INSERT INTO t (name) VALUES ('a')"))
        return calls

    try:
        sessionmaker = create_sessionmaker(engine)
        assert await in_transaction(sessionmaker, insert) == 2
        calls = 10
        with pytest.raises(IntegrityError):
            await in_transaction(sessionmaker, insert)  # 'a' is taken: not retried
        assert calls == 11
    finally:
        blocker.close()
        await engine.dispose()


async def test_postgresql_deadlock_is_retried(db_kind: str, database_url: str | None) -> None:
    if db_kind != "postgresql":
        pytest.skip("PostgreSQL deadlocks")
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL)"))
            await conn.execute(text("INSERT INTO t VALUES (1, 0), (2, 0)"))
        other = await engine.connect()
        await other.begin()
        await other.execute(text("UPDATE t SET v = v + 1 WHERE id = 2"))  # the other transaction holds row 2
        other_done: list[asyncio.Task[None]] = []
        calls = 0

        async def other_takes_row_1() -> None:
            await asyncio.sleep(0.3)  # after ours waits for row 2, so ours is the one PostgreSQL aborts
            await other.execute(text("UPDATE t SET v = v + 10 WHERE id = 1"))
            await other.commit()

        async def both_rows(session: AsyncSession) -> int:
            nonlocal calls
            calls += 1
            await session.execute(text("UPDATE t SET v = v + 100 WHERE id = 1"))
            if calls == 1:
                other_done.append(asyncio.create_task(other_takes_row_1()))
            await session.execute(text("UPDATE t SET v = v + 100 WHERE id = 2"))
            return calls

        assert await in_transaction(create_sessionmaker(engine), both_rows) == 2
        await other_done[0]
        await other.close()
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, v FROM t ORDER BY id"))).all()
        assert [tuple(r) for r in rows] == [(1, 110), (2, 101)]
    finally:
        await engine.dispose()
