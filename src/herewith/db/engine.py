"""Async engine and sessionmaker for SQLite (default) or PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from herewith.config import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    """Engine for ``settings.sqlalchemy_url``.

    SQLite runs in WAL mode with a busy timeout: a committed transaction survives ``kill -9`` of the
    process (WAL with synchronous=NORMAL loses nothing on a process crash, only on power loss).
    """
    url = settings.sqlalchemy_url
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
        # Every session ends its transaction itself (commit, or the rollback in close()), so the pool's
        # extra rollback on check-in is one more thread round trip per request for nothing.
        kwargs["pool_reset_on_return"] = None
    else:
        kwargs.update(pool_size=20, max_overflow=20, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
