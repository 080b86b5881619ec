"""The one authentication dependency of every ``/v1`` route, and the request sessions re-exported for endpoints.

Usage::

    app.include_router(router, prefix="/v1", dependencies=[Depends(get_organization)])

    @router.get("/things")
    async def things(session: SessionDep, org: OrganizationDep) -> ...: ...
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from herewith.auth import service
from herewith.auth.models import OrganizationRef
from herewith.deps import ReadSessionDep, SessionDep, get_session  # noqa: F401 - re-exported for endpoints


async def get_organization(request: Request) -> OrganizationRef:
    """The organization of the request's Bearer API key, looked up in the database on every request
    (:func:`herewith.auth.service.authenticate`: 401 for a missing, unknown or revoked key).

    The lookup is one SELECT on a connection of the read engine (autocommit; on SQLite a pool of its own
    beside the writer's) that goes back to the pool before the endpoint runs: no request holds a database
    connection through its body upload or its endpoint's other waits because it was authenticated.

    Then the rate-limit charge: ``request.state.charge_request(request, org)`` from the lifespan state, when
    set (awaited when it returns an awaitable), charges the request's points and raises the contract's 429
    before the endpoint runs (:func:`herewith.ratelimit.http.rate_limit_enforcer`). Authentication comes
    first, so a revoked key gets its 401 whatever its organization's budget (CONTRACT.md, "Authentication"
    and "Rate limiting"). FastAPI caches the result per request, so endpoints that also ask for
    :data:`OrganizationDep` get the same organization, authenticated and charged once.
    """
    state = request.state
    token = service.bearer_token(request.headers.get("authorization"))
    async with state.read_engine.connect() as connection:
        org = await service.authenticate(connection, token)
    charge = state.charge_request
    if charge is not None:
        pending = charge(request, org)  # decided at once, or an awaitable (the limiter needs Redis)
        if pending is not None:
            await pending
    return org


OrganizationDep = Annotated[OrganizationRef, Depends(get_organization)]
