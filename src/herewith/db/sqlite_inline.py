"""SQLite for the async engine without a thread per call: the driver connection behind SQLAlchemy's
``sqlite+aiosqlite`` dialect, plugged in through ``create_async_engine(async_creator=...)``.

Why not plain aiosqlite: aiosqlite runs every call (cursor, execute, fetch, close, commit) on a worker
thread and hands the result back through the event loop. On these machines one such handoff costs about
0.15 ms, and SQLAlchemy makes four of them per statement, while the statements Herewith runs (indexed
lookups, single-row inserts, WAL commits without fsync) take 15-30 µs in SQLite itself. Measured on the
2-core test machine: ``SELECT 1`` through the aiosqlite engine 1.6 ms, through ``sqlite3`` 0.014 ms. So
this module calls :mod:`sqlite3` directly on the event loop thread and keeps aiosqlite's API (which is
all SQLAlchemy's adapter uses), and the rest of SQLAlchemy, the dialect included, is unchanged.

What running on the loop thread needs, and how it is handled:

- **Never wait for a lock inside SQLite.** Connections use ``busy_timeout = 0``. Writers of this process
  take :class:`WriterLock` (an ``asyncio.Lock``) before their first write and hold it until the
  transaction ends, so two connections of one process never contend inside SQLite; other processes on
  the same file can still hold the write lock, and then the statement fails with ``SQLITE_BUSY`` at once
  and is retried after an ``asyncio.sleep`` (1 ms doubling to 50 ms, for at most ``busy_timeout_s``, 30 s
  by default, as SQLite's own busy handler would), so the loop keeps serving meanwhile. A statement that
  got plain ``SQLITE_BUSY`` changed nothing, so the retry is safe; ``SQLITE_BUSY_SNAPSHOT`` (a read
  snapshot older than another writer's commit) is raised, and
  :func:`herewith.kit.transactions.in_transaction` reruns the unit of work.
- **No fsync on the loop.** WAL with ``synchronous=NORMAL`` does not sync on commit; only checkpoints
  do. Automatic checkpoints are off on these connections, and :func:`run_checkpointer` copies the WAL
  back into the database from a worker thread once a second (``PRAGMA wal_checkpoint(PASSIVE)``).
- **Long statements block the loop.** Everything Herewith runs is an indexed lookup or a small write;
  a statement that scans a large table would stall other requests for its duration.

Transactions follow :mod:`sqlite3`'s default (legacy) mode, as with aiosqlite: ``BEGIN`` is issued
before the first INSERT/UPDATE/DELETE, reads outside a write run in autocommit.

Usage (what :func:`herewith.db.engine.create_engine` does)::

    writer = WriterLock()
    engine = create_async_engine("sqlite+aiosqlite:///data/herewith.db",
                                 async_creator=lambda: connect(path, writer))
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Select
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect

log = structlog.get_logger(__name__)

SQLITE_BUSY = 5
SQLITE_BUSY_RECOVERY = 5 | (1 << 8)
_RETRYABLE_BUSY = (SQLITE_BUSY, SQLITE_BUSY_RECOVERY)
# Statements that never take SQLite's write lock; every other one (INSERT, UPDATE, DELETE, BEGIN,
# SAVEPOINT, CREATE, WITH ..., ...) first takes the process's WriterLock.
_READ_ONLY_VERBS = ("SELECT", "PRAGMA", "EXPLAIN", "VALUES")
# Bytes the WAL file is truncated to when SQLite starts it over (it is reused, not shrunk, otherwise).
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024


class WriterLock:
    """The one-writer-at-a-time rule of SQLite, kept in this process's event loop.

    ``timeout_s``: how long a writer waits before getting ``sqlite3.OperationalError("database is
    locked")``, the error SQLite itself gives after its busy timeout.
    """

    def __init__(self, timeout_s: float = 30.0) -> None:
        self._lock = asyncio.Lock()
        self.timeout_s = timeout_s

    async def acquire(self) -> None:
        if not self._lock.locked():
            await self._lock.acquire()  # uncontended: returns without yielding to the loop
            return
        try:
            await asyncio.wait_for(self._lock.acquire(), self.timeout_s)
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None

    def release(self) -> None:
        self._lock.release()


def _is_read_only(sql: str) -> bool:
    head = sql.lstrip()[:8].upper()
    return head.startswith(_READ_ONLY_VERBS)


class InlineConnection:
    """A :mod:`sqlite3` connection with aiosqlite's ``Connection`` API, run on the calling thread.

    ``_connection`` is the :class:`sqlite3.Connection` (``None`` once closed); SQLAlchemy's adapter
    reads that attribute, as it does on aiosqlite.
    """

    def __init__(self, conn: sqlite3.Connection, writer: WriterLock, busy_timeout_s: float) -> None:
        self._connection: sqlite3.Connection | None = conn
        self._writer = writer
        self._holds_writer = False
        self._busy_timeout_s = busy_timeout_s

    # -- the sqlite3 connection and transaction state --------------------------------------------
    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    @property
    def in_transaction(self) -> bool:
        return self._connection is not None and self._connection.in_transaction

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value

    # -- statements ------------------------------------------------------------------------------
    async def run(self, sql: str, call: Callable[[], Any]) -> Any:
        """Run ``call`` (one sqlite3 statement of ``sql``) under the write rules described above."""
        if not self._holds_writer and not _is_read_only(sql):
            await self._writer.acquire()
            self._holds_writer = True
        try:
            deadline: float | None = None
            delay = 0.001
            while True:
                try:
                    return call()
                except sqlite3.OperationalError as exc:
                    # Another process holds SQLite's lock. SQLite guarantees that a statement that got
                    # SQLITE_BUSY changed nothing, so running it again is safe; a stale snapshot shows up
                    # on the retry as SQLITE_BUSY_SNAPSHOT, which is raised.
                    if getattr(exc, "sqlite_errorcode", None) not in _RETRYABLE_BUSY:
                        raise
                    now = time.monotonic()
                    deadline = deadline or now + self._busy_timeout_s
                    if now >= deadline:
                        raise
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.05)
        finally:
            self._after_statement()

    def _after_statement(self) -> None:
        if not self.in_transaction:
            self._release_writer()

    def _release_writer(self) -> None:
        if self._holds_writer:
            self._holds_writer = False
            self._writer.release()

    def cursor(self) -> InlineCursor:
        return InlineCursor(self)

    async def commit(self) -> None:
        try:
            self._conn.commit()
        finally:
            self._after_statement()

    async def rollback(self) -> None:
        try:
            self._conn.rollback()
        finally:
            self._after_statement()

    async def close(self) -> None:
        conn, self._connection = self._connection, None
        if conn is None:
            return
        try:
            conn.close()  # rolls back an open transaction
        finally:
            self._release_writer()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate)."""
        conn, self._connection = self._connection, None
        try:
            if conn is not None:
                conn.close()
        finally:
            self._release_writer()

    async def create_function(self, name: str, num_params: int, func: Callable[..., Any], *,
                              deterministic: bool = False) -> None:
        self._conn.create_function(name, num_params, func, deterministic=deterministic)


class InlineCursor:
    """aiosqlite's ``Cursor`` API over a :class:`sqlite3.Cursor`, run on the calling thread."""

    def __init__(self, connection: InlineConnection) -> None:
        self._owner = connection
        self._cursor = connection._conn.cursor()

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> InlineCursor:
        params = () if parameters is None else parameters
        await self._owner.run(sql, lambda: self._cursor.execute(sql, params))
        return self

    async def executemany(self, sql: str, seq_of_parameters: Iterable[Any]) -> InlineCursor:
        rows = list(seq_of_parameters)  # a retry needs them again
        await self._owner.run(sql, lambda: self._cursor.executemany(sql, rows))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


def open_connection(path: Path | str, writer: WriterLock, *, busy_timeout_s: float = 30.0) -> InlineConnection:
    """Open ``path`` in WAL mode (``synchronous=NORMAL``: a committed transaction survives ``kill -9``),
    with foreign keys on and no automatic checkpoints (see the module doc).

    Switching to WAL needs a moment when no other process writes, so the pragmas run with SQLite's own
    busy handler (``busy_timeout_s``), before the connection serves anything; then it is set to 0.
    """
    conn = sqlite3.connect(str(path), timeout=busy_timeout_s, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "wal_autocheckpoint=0",
                   f"journal_size_limit={JOURNAL_SIZE_LIMIT}", "busy_timeout=0"):
        conn.execute(f"PRAGMA {pragma}").fetchall()
    return InlineConnection(conn, writer, busy_timeout_s)


async def connect(path: Path | str, writer: WriterLock, *, busy_timeout_s: float = 30.0) -> InlineConnection:
    """The ``async_creator`` for SQLAlchemy (see the module doc)."""
    return open_connection(path, writer, busy_timeout_s=busy_timeout_s)


class InlineReadUnavailable(Exception):
    """An :class:`InlineReader` read could not run at once (SQLite busy or locked); use the async path."""


class InlineQuery:
    """A SELECT compiled once to SQLite's SQL text, with its parameter order and the result processors a
    SQLAlchemy ``Result`` would apply (dates come back as aware datetimes, as from the engine)."""

    def __init__(self, stmt: Select[Any]) -> None:
        dialect = sqlite_dialect()
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self.param_names = tuple(compiled.positiontup or ())
        self.processors = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None)
                                for c in stmt.selected_columns)
        self.converts = any(p is not None for p in self.processors)


class InlineReader:
    """Synchronous point reads for the hottest lookups (API key -> organization, meeting by id), on a
    :mod:`sqlite3` connection of its own, called on the event loop thread with no await at all.

    Why: through SQLAlchemy's async layer and a batching loader, one such lookup costs a request about
    30 us of CPU on the 2-core test machine (connection checkout, greenlet hop, execution context, a
    suspension until the batch's tick); the statement itself takes a few. These reads are single-row
    index lookups, so running them inline is both cheaper and as short as a statement gets.

    Rules: every statement is read-only and run to completion (``fetchall``), so no read transaction
    outlives the call and each read sees the newest committed data, as a fresh SQLAlchemy connection
    would. WAL readers never wait for writers; if SQLite still answers busy or locked (a recovery in
    another process), :meth:`all` raises :class:`InlineReadUnavailable` and the caller takes its async
    path, which knows how to wait. ``path``: the database file.
    """

    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._conn: sqlite3.Connection | None = None

    def all(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Rows of one read-only statement (``?`` placeholders). Raises :class:`InlineReadUnavailable`."""
        try:
            if self._conn is None:
                conn = sqlite3.connect(self._path, timeout=0, check_same_thread=False, isolation_level=None)
                conn.execute("PRAGMA query_only=ON")
                self._conn = conn
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise InlineReadUnavailable(str(exc)) from exc

    def rows(self, query: InlineQuery, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Rows of ``query`` with its named ``params``, values converted as the engine would. Raises
        :class:`InlineReadUnavailable`."""
        raw = self.all(query.sql, [params[name] for name in query.param_names])
        if not query.converts:
            return raw
        procs = query.processors
        return [tuple([v if p is None else p(v) for v, p in zip(row, procs)]) for row in raw]

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def checkpoint(path: Path | str) -> tuple[int, int, int]:
    """One passive WAL checkpoint of ``path`` on a connection of its own (blocking: call it from a worker
    thread). Returns SQLite's (busy, WAL frames, frames checkpointed)."""
    conn = sqlite3.connect(str(path), timeout=0)
    try:
        return tuple(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())  # type: ignore[return-value]
    finally:
        conn.close()


async def run_checkpointer(path: Path | str, interval_s: float = 1.0, writer: WriterLock | None = None,
                           restart_frames: int = 1024) -> None:
    """Copy the WAL back into the database every ``interval_s`` seconds, from a worker thread, until
    cancelled. Stands in for SQLite's automatic checkpoint, which would fsync on the event loop.

    SQLite starts the WAL over from its beginning only when a writer finds every frame copied back. Under a
    steady stream of writes that never happens by itself: each checkpoint copies what was there when it
    began while new frames are appended, and the WAL grew by about 19 MB a second under ``wrk`` POSTs
    (measured: 520 MB after 30 s). So when the WAL holds more than ``restart_frames`` frames, a second
    checkpoint runs holding ``writer`` (this process's writers wait on the loop meanwhile, for the few
    milliseconds it takes to copy what was appended during the first); with every frame copied back, the
    next write starts the WAL over, and ``journal_size_limit`` trims the file.
    """
    while True:
        await asyncio.sleep(interval_s)
        try:
            _, frames, _ = await asyncio.to_thread(checkpoint, path)
            if writer is not None and frames > restart_frames:
                await writer.acquire()
                try:
                    await asyncio.to_thread(checkpoint, path)
                finally:
                    writer.release()
        except sqlite3.Error as exc:
            log.warning("wal checkpoint failed", error=str(exc))
