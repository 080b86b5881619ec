"""Run a unit of work in its own transaction, retrying when SQLite reports a busy database.

SQLite in WAL mode refuses (``database is locked``) a write from a transaction whose read snapshot is older
than another connection's commit; retrying the whole unit of work is the fix. PostgreSQL deadlocks and
serialization failures are retried the same way. Background jobs (sweepers, the webhook worker, the room
event sink) use this; request handlers rely on the request session.

Usage::

    result = await in_transaction(sessionmaker, lambda session: sweep_once(session, now))
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")
RETRYABLE = ("database is locked", "deadlock detected", "could not serialize", "database table is locked")


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, (OperationalError, DBAPIError)) and any(m in str(exc).lower() for m in RETRYABLE)


async def in_transaction(
    sessionmaker: async_sessionmaker[AsyncSession], work: Callable[[AsyncSession], Awaitable[T]], attempts: int = 12
) -> T:
    """``work(session)`` then commit; on a retryable error roll back and run it again (short jittered waits)."""
    for attempt in range(1, attempts + 1):
        async with sessionmaker() as session:
            try:
                result = await work(session)
                await session.commit()
                return result
            except Exception as exc:
                await session.rollback()
                if attempt == attempts or not is_retryable(exc):
                    raise
        # A stale SQLite snapshot clears as soon as the other writer commits: retry fast, then back off.
        await asyncio.sleep(min(0.002 * 2**attempt, 1.0) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")
