"""Async engine and sessionmaker for SQLite (default) or PostgreSQL, both through SQLAlchemy's own dialects.

Usage::

    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from herewith.config import Settings

#: Seconds a SQLite statement waits for another connection's write lock before ``SQLITE_BUSY``
#: ("database is locked"); SQLite's own busy handler does the waiting, in aiosqlite's thread.
SQLITE_BUSY_TIMEOUT_S = 30.0


def create_engine(settings: Settings) -> AsyncEngine:
    """Engine for ``settings.sqlalchemy_url`` (no connection is made here).

    SQLite (``sqlite+aiosqlite``): every statement runs in aiosqlite's thread of its connection, never on
    the event loop. Each connection is switched to WAL with ``synchronous=NORMAL`` (a committed transaction
    survives ``kill -9`` of the process; only a power loss can take the last commits), foreign keys on, and
    a busy timeout of :data:`SQLITE_BUSY_TIMEOUT_S` (SQLAlchemy docs, "Setting Per-Connection / Pragma").

    Transactions keep the driver's default (``sqlite3``'s legacy) mode: reads before a transaction's first
    INSERT/UPDATE/DELETE run outside it, and the driver issues a deferred ``BEGIN`` right before that first
    write. So a write transaction never starts from a read snapshot that another connection's commit made
    stale (the SQLITE_BUSY_SNAPSHOT case that the busy timeout cannot wait out), and ``BEGIN IMMEDIATE`` is
    not needed. A SAVEPOINT issued before any write (``session.begin_nested()``) starts the transaction
    itself; rolling back to it and committing work as usual.

    PostgreSQL (``postgresql+asyncpg``): a plain pool with pre-ping, so that connections the server closed
    (a restart, ``pg_terminate_backend``) are replaced at checkout instead of failing a request.
    """
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                       f"busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}"):
            cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions of ``engine``; objects stay readable after commit (``expire_on_commit=False``)."""
    return async_sessionmaker(engine, expire_on_commit=False)
