"""Long read-only queries (insights over a whole organization) off the event loop that relays calls.

SQLAlchemy's asyncio extension runs the driver in a worker thread (aiosqlite) or on sockets (asyncpg), but
it builds ORM objects and runs the caller's Python on the event loop's thread: an insights query over
100,000 participant rows kept that thread busy for over a second, and every room of the process waited
(``bench/signaling.py --insights-rows 100000``). :class:`ReportRunner` runs such work on a thread of its
own, with its own event loop and engine (an engine belongs to one loop), and hands back the result. The
relay loop then only waits for the interpreter lock, which CPython hands over every few milliseconds.

Usage::

    reports = ReportRunner(settings)
    reports.start()
    page = await reports.run(lambda session: insights.room_insights(session, org_id, ...))
    await reports.stop()
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from herewith.config import Settings
from herewith.db.engine import create_read_engine, create_sessionmaker

T = TypeVar("T")


class ReportRunner:
    """A thread running an event loop with its own database engine, for read-only work of any length."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._engine: AsyncEngine | None = None
        self._sessionmaker: async_sessionmaker[AsyncSession] | None = None

    def start(self) -> None:
        """Start the thread and its loop (idempotent); the engine connects on first use."""
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            self._engine = create_read_engine(self._settings)  # reads only, beside the writer
            self._sessionmaker = create_sessionmaker(self._engine)
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="herewith-reports", daemon=True)
        self._thread.start()
        ready.wait()

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``await work(session)`` on the reports thread in a session of its own (rolled back after: reads
        only) and return its result. Exceptions raised by ``work`` propagate (e.g. a 400 for a bad filter)."""
        if self._loop is None:
            raise RuntimeError("ReportRunner.start() was not called")

        async def in_session() -> T:
            assert self._sessionmaker is not None
            async with self._sessionmaker() as session:
                return await work(session)

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(in_session(), self._loop))

    async def stop(self) -> None:
        """Dispose of the engine and end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._engine is not None:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._engine.dispose(), loop))
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 10)
        loop.close()
        self._loop = self._thread = None
