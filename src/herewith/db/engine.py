"""Async engines and sessionmakers for SQLite (default) or PostgreSQL, both through SQLAlchemy's own dialects.

Two engines per process:

- :func:`create_engine`: the engine of the request sessions and of all background work (reads and writes).
- :func:`create_read_engine`: autocommit reads that need no transaction, such as the API-key lookup of
  every ``/v1`` request and read-only endpoints (:data:`herewith.deps.ReadSessionDep`).

Usage::

    engine = create_engine(settings)
    read_engine = create_read_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    ...
    await dispose(engine, read_engine)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from herewith.config import Settings

#: Seconds a SQLite statement waits for another connection's write lock before ``SQLITE_BUSY``
#: ("database is locked"); SQLite's own busy handler does the waiting, in aiosqlite's thread. Within one
#: process writers queue in the pool instead (:data:`SQLITE_POOL_SIZE`); this covers other processes (the
#: CLI, a second server on the same file).
SQLITE_BUSY_TIMEOUT_S = 30.0
#: Connections of a SQLite engine. One: SQLite runs one write transaction at a time per database, and a
#: second connection of this process trying to write would wait in SQLite's busy handler, which sleeps
#: (1, 2, 5 ... up to 100 ms between tries) and lets any newcomer overtake it (p99 800 ms at 32 concurrent
#: POSTs with 15 connections). With one connection, sessions queue for it in the pool, first come first served.
SQLITE_POOL_SIZE = 1
#: Connections of the read engines (:func:`create_read_engine`). SQLite: WAL readers run beside the writer
#: and each other.
SQLITE_READ_POOL_SIZE = 4
POSTGRESQL_READ_POOL_SIZE = 8
#: Seconds a session waits for a pooled connection before ``sqlalchemy.exc.TimeoutError``.
POOL_TIMEOUT_S = 30.0
#: Connections of a PostgreSQL engine, and no overflow: sessions beyond them wait in the pool's queue. An
#: overflow connection is closed when it comes back while the pool is full, so under steady load beyond the
#: pool every few requests paid for a new connection (TCP, the SSL attempt, authentication, and asyncpg's
#: statement cache starting empty): about 12 % of the server's time at 32 concurrent POSTs with 20 + 20.
POSTGRESQL_POOL_SIZE = 20


def create_engine(settings: Settings) -> AsyncEngine:
    """Engine for ``settings.sqlalchemy_url`` (no connection is made here).

    SQLite (``sqlite+aiosqlite``): every statement runs in aiosqlite's thread of its connection, never on
    the event loop. Each connection is switched to WAL with ``synchronous=NORMAL`` (a committed transaction
    survives ``kill -9`` of the process; only a power loss can take the last commits), foreign keys on, and
    a busy timeout of :data:`SQLITE_BUSY_TIMEOUT_S` (SQLAlchemy docs, "Setting Per-Connection / Pragma").
    The pool holds :data:`SQLITE_POOL_SIZE` connection(s) and no overflow: sessions wait for it in the
    pool's queue, in order, for at most :data:`POOL_TIMEOUT_S`.

    Transactions keep the driver's default (``sqlite3``'s legacy) mode: reads before a transaction's first
    INSERT/UPDATE/DELETE run outside it, and the driver issues a deferred ``BEGIN`` right before that first
    write. So a write transaction never starts from a read snapshot that another connection's commit made
    stale (the SQLITE_BUSY_SNAPSHOT case that the busy timeout cannot wait out), and ``BEGIN IMMEDIATE`` is
    not needed. A SAVEPOINT issued before any write (``session.begin_nested()``) starts the transaction
    itself; rolling back to it and committing work as usual.

    PostgreSQL (``postgresql+asyncpg``): a pool of :data:`POSTGRESQL_POOL_SIZE` connections. A connection
    the server closed (a restart, ``pg_terminate_backend``) is replaced at checkout: asyncpg notices the
    closed socket on the event loop, and a ``checkout`` listener turns ``is_closed()`` into SQLAlchemy's
    :class:`~sqlalchemy.exc.DisconnectionError`, on which the pool connects anew. That costs no round trip,
    where ``pool_pre_ping`` costs three per checkout outside autocommit (BEGIN, ``;``, ROLLBACK: as many as
    the INSERT's own transaction in ``POST /v1/meetings``). A connection that breaks unnoticed fails its
    one request; SQLAlchemy then invalidates the pool's older connections.
    """
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S},
                                     pool_size=SQLITE_POOL_SIZE, max_overflow=0, pool_timeout=POOL_TIMEOUT_S)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(url, pool_size=POSTGRESQL_POOL_SIZE, max_overflow=0, pool_timeout=POOL_TIMEOUT_S)
    event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)
    return engine


def create_read_engine(settings: Settings) -> AsyncEngine:
    """The engine of reads that need no transaction: every statement commits on its own (``AUTOCOMMIT``),
    a pool of its own beside :func:`create_engine`'s.

    So a single SELECT costs one statement: no BEGIN and COMMIT round trips on PostgreSQL, and on SQLite no
    ROLLBACK ending each use of a connection (``skip_autocommit_rollback``; each would be one more trip to
    aiosqlite's thread). The isolation level is the engine's own, set once per connection: switching a
    pooled connection of the main engine to autocommit and back on every checkout cost about 5 % of a
    ``POST /v1/meetings``. Its connections cannot write (SQLite ``query_only``, PostgreSQL
    ``default_transaction_read_only``: a write through them is an error); on SQLite, thanks to WAL, they read
    beside the writer's connection instead of queueing for it.
    """
    url = settings.sqlalchemy_url
    options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT", "skip_autocommit_rollback": True, "max_overflow": 0,
                               "pool_timeout": POOL_TIMEOUT_S}
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S},
                                     pool_size=SQLITE_READ_POOL_SIZE, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_read_pragmas)
        return engine
    engine = create_async_engine(url, pool_size=POSTGRESQL_READ_POOL_SIZE,
                                 connect_args={"server_settings": {"default_transaction_read_only": "on"}}, **options)
    event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)
    return engine


async def dispose(*engines: AsyncEngine) -> None:
    """Close the pooled connections of ``engines``, in order."""
    for engine in engines:
        await engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    _pragmas(dbapi_connection, ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                                f"busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}"))


def _sqlite_read_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # journal_mode is the file's (WAL since the main engine's first connection); foreign keys are for writers.
    _pragmas(dbapi_connection, (f"busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}", "query_only=ON"))


def _pragmas(dbapi_connection: Any, pragmas: tuple[str, ...]) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def _refuse_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this connection")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions of ``engine``; objects stay readable after commit (``expire_on_commit=False``)."""
    return async_sessionmaker(engine, expire_on_commit=False)
