"""FastAPI dependencies: a DB session per request, and the Bearer-authenticated organization."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from herewith.auth.models import OrganizationRef


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


async def get_organization(request: Request) -> OrganizationRef:
    """The organization of the request's API key; sets ``request.state.organization``. 401 otherwise
    (see :class:`~herewith.auth.service.ApiKeyAuthenticator`).

    Then, once per request, ``app.state.charge_request(request, org)`` when set (awaited when it returns an
    awaitable): the rate limiter charges
    the request's points there and raises the contract's 429 before the endpoint runs
    (:func:`herewith.ratelimit.http.rate_limit_enforcer`). It is the dependency of every ``/v1`` router, so every
    ``/v1`` call is authenticated and charged, and endpoints that ask for the organization get it from
    FastAPI's per-request cache.
    """
    org = getattr(request.state, "organization", None)
    if org is None:
        org = await request.app.state.authenticator.authenticate(request.headers.get("authorization"))
        request.state.organization = org
        charge = getattr(request.app.state, "charge_request", None)
        if charge is not None:
            pending = charge(request, org)  # decided at once, or an awaitable (the limiter needs Redis)
            if pending is not None:
                await pending
    return org


OrganizationDep = Annotated[OrganizationRef, Depends(get_organization)]
