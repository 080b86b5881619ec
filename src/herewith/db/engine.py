"""Async engine and sessionmaker for SQLite (default) or PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from herewith.config import Settings
from herewith.db import sqlite_inline
from herewith.db.sqlite_inline import WriterLock


def create_engine(settings: Settings) -> AsyncEngine:
    """Engine for ``settings.sqlalchemy_url``.

    SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed transaction survives ``kill -9`` of
    the process (only a power loss can take the last commits). Its connections call SQLite on the event
    loop thread (:mod:`herewith.db.sqlite_inline` says why and how); the server runs
    :func:`~herewith.db.sqlite_inline.run_checkpointer` beside them.
    """
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = sqlite_path(url)
        writer = WriterLock()
        engine = create_async_engine(
            url,
            async_creator=lambda: sqlite_inline.connect(path, writer),
            # Every session ends its transaction itself (commit, or the rollback in close()), so the
            # pool's extra rollback on check-in would only cost time.
            pool_reset_on_return=None,
            pool_size=8,
            # The most recently used connection first: its page cache is still valid (SQLite drops a
            # connection's cache when another connection has written since its last transaction), so
            # the hot calls mostly hit memory; FIFO would hand out the coldest connection each time.
            pool_use_lifo=True,
            max_overflow=24,
        )
        engine.sync_engine.herewith_writer_lock = writer  # type: ignore[attr-defined]  # see writer_lock()
        return engine
    return create_async_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


def create_hot_engine(settings: Settings, engine: AsyncEngine) -> AsyncEngine:
    """The engine of the per-request lookups and meeting inserts (auth, MeetingStore): on SQLite ``engine``
    itself; on PostgreSQL a second pool in autocommit mode.

    Why on PostgreSQL: each of those batches is one statement (a SELECT, or one INSERT), and in a
    transaction SQLAlchemy adds a BEGIN and a COMMIT or ROLLBACK, each a round trip of its own.

    No pre-ping either (a round trip per checkout, about 180 µs here, on the path of every POST): a
    connection PostgreSQL closed (a restart, ``pg_terminate_backend``) is told apart without asking the
    server, because asyncpg marks it closed as soon as the event loop sees its socket close, and the
    checkout hook below then makes the pool replace it (SQLAlchemy's "pessimistic disconnect handling"
    with a custom check: raising ``DisconnectionError`` at checkout). What that cannot see, a connection
    that dies while silent, fails its statement, and SQLAlchemy then invalidates the whole pool.
    """
    if engine.dialect.name == "sqlite":
        return engine
    hot = create_async_engine(settings.sqlalchemy_url, isolation_level="AUTOCOMMIT", pool_size=10,
                              max_overflow=10, pool_reset_on_return=None)
    event.listen(hot.sync_engine, "checkout", _refuse_closed_connection)
    return hot


def _refuse_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("PostgreSQL closed this connection")


def writer_lock(engine: AsyncEngine) -> WriterLock | None:
    """The SQLite engine's :class:`~herewith.db.sqlite_inline.WriterLock` (None on PostgreSQL)."""
    return getattr(engine.sync_engine, "herewith_writer_lock", None)


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite+aiosqlite:///<path>`` URL."""
    return make_url(url).database or ""


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
