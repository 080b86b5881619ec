"""FastAPI dependencies: a DB session per request, and the Bearer-authenticated organization."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from herewith.auth import service
from herewith.auth.models import Organization


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session that commits when the endpoint returns and rolls back when it raises (services never commit)."""
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


# scope="function": commit before the response is sent, so nothing is acknowledged that is not durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_organization(request: Request, session: SessionDep) -> Organization:
    """The organization of the request's API key; sets ``request.state.organization``. 401 otherwise."""
    org = getattr(request.state, "organization", None)
    if org is None:
        org = await service.authenticate(session, request.headers.get("authorization"))
        request.state.organization = org
    return org


OrganizationDep = Annotated[Organization, Depends(get_organization)]
