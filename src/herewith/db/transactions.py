"""Run a unit of work in its own transaction, retried (tenacity) when the database says it may succeed later.

Retried, by the driver's error (``exc.orig`` of SQLAlchemy's :class:`~sqlalchemy.exc.DBAPIError`), never by
its text:

- SQLite ``SQLITE_BUSY`` / ``SQLITE_LOCKED`` and their extended codes (``sqlite3.Error.sqlite_errorcode``):
  another connection held the lock for longer than the busy timeout, or a snapshot went stale;
- PostgreSQL deadlock (SQLSTATE ``40P01``) and serialization failure (``40001``).

Background work (sweeps, webhook delivery, the room event recorder) uses this; request handlers rely on the
request session (:func:`herewith.deps.get_session`). The work runs again from the start in a new session, so
it must not have effects outside the database.

Usage::

    result = await in_transaction(sessionmaker, lambda session: sweep_once(session, now))
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

T = TypeVar("T")

SQLITE_RETRYABLE = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
POSTGRESQL_RETRYABLE = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure


def is_retryable(exc: BaseException) -> bool:
    """True for the driver errors listed in the module doc (``exc`` as SQLAlchemy raises it)."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in SQLITE_RETRYABLE  # the primary code of an extended one (SQLITE_BUSY_SNAPSHOT ...)
    # SQLAlchemy's asyncpg adapter gives its errors the server's SQLSTATE as ``sqlstate`` (``pgcode`` too).
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return sqlstate in POSTGRESQL_RETRYABLE


async def in_transaction(
    sessionmaker: async_sessionmaker[AsyncSession], work: Callable[[AsyncSession], Awaitable[T]], attempts: int = 12
) -> T:
    """``work(session)`` then commit, in a new session; on a retryable error (:func:`is_retryable`) the session
    is rolled back and the whole unit runs again, up to ``attempts`` times in all, after random waits that
    grow from a few milliseconds to at most 1 s. Other errors, and the last retryable one, are raised."""
    retrying = AsyncRetrying(
        retry=retry_if_exception(is_retryable),
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=0.005, max=1.0),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            async with sessionmaker() as session:  # closing it rolls back what was not committed
                result = await work(session)
                await session.commit()
    return result
