"""Request dependencies every domain's endpoints share: settings, the clock and database sessions.

``create_app`` builds one services object and its lifespan yields the parts endpoints may use as the
lifespan state (Starlette copies it into every request's and WebSocket's ``state``); these functions read
them by name, so no module but ``app.py`` knows the services object or touches ``app.state``.

Usage::

    @router.post("/things")
    async def add_thing(session: SessionDep, clock: ClockDep) -> ...: ...

    @router.get("/things")
    async def things(session: ReadSessionDep) -> ...: ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from herewith.config import Settings
from herewith.kit.time import Clock


def get_settings(conn: HTTPConnection) -> Settings:
    """The process's :class:`~herewith.config.Settings`."""
    return conn.state.settings


def get_clock(conn: HTTPConnection) -> Clock:
    """The process's :class:`~herewith.kit.time.Clock` (tests move it)."""
    return conn.state.clock


def get_sessionmaker(conn: HTTPConnection) -> async_sessionmaker[AsyncSession]:
    """The sessionmaker of the process's database."""
    return conn.state.sessionmaker


async def get_session(conn: HTTPConnection) -> AsyncIterator[AsyncSession]:
    """A session that commits when the endpoint returns and rolls back when it raises (services never
    commit; polar's convention). It takes a connection from the pool at its first statement, so an
    endpoint that first reads an upload holds none meanwhile."""
    async with conn.state.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


async def get_read_session(conn: HTTPConnection) -> AsyncIterator[AsyncSession]:
    """A session on the read engine, for endpoints that only read: each statement commits on its own (no
    transaction spans two of them), and on SQLite it never waits for the writer's connection."""
    async with conn.state.read_sessionmaker() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
# scope="function": commit before the response is sent, so nothing is acknowledged that is not durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
# scope="function": the connection goes back to the pool before the response is sent.
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
