"""FastAPI dependencies: a DB session per request, and the Bearer-authenticated organization."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from herewith.auth.models import OrganizationRef, Principal
from herewith.deps import SessionDep, get_session  # noqa: F401 - re-exported for endpoints


async def _admit(request: Request, principal: Principal) -> OrganizationRef:
    org = principal.organization
    request.state.principal = principal
    request.state.organization = org
    charge = request.state.charge_request
    if charge is not None:
        pending = charge(request, org)  # decided at once, or an awaitable (the limiter needs Redis)
        if pending is not None:
            await pending
    return org


async def get_organization(request: Request) -> OrganizationRef:
    """The organization of the request's API key, checked against the database now; sets
    ``request.state.principal`` and ``request.state.organization``. 401 otherwise
    (see :class:`~herewith.auth.service.ApiKeyAuthenticator`).

    Then, once per request, ``request.state.charge_request(request, org)`` (from the lifespan state) when set (awaited when it returns an
    awaitable): the rate limiter charges the request's points there and raises the contract's 429 before
    the endpoint runs (:func:`herewith.ratelimit.http.rate_limit_enforcer`). It is the dependency of the
    ``/v1`` routers (but see :func:`identify_request`), so every ``/v1`` call is authenticated and
    charged, and endpoints that ask for the organization get it from FastAPI's per-request cache.
    """
    principal = getattr(request.state, "principal", None)
    if principal is None:
        principal = await request.state.authenticator.authenticate(request.headers.get("authorization"))
        return await _admit(request, principal)
    if not principal.verified:
        await verify_request(request)
    return principal.organization


async def identify_request(request: Request) -> Principal:
    """As :func:`get_organization` (authentication, then the rate-limit charge), but the principal may come
    from the authenticator's identity cache, unverified
    (:meth:`~herewith.auth.service.ApiKeyAuthenticator.identify`); returns it.

    Called first thing by endpoints that act only through a statement that checks the key itself
    (the principal passed to :class:`~herewith.meetings.service.MeetingStore`) and that call
    :func:`verify_request` before any other answer, so that answers are those of :func:`get_organization`.
    A plain call rather than a FastAPI dependency: resolving a dependency cost those endpoints about 4 %
    of their instructions (``bench/icount.py``).
    """
    principal = await request.state.authenticator.identify(request.headers.get("authorization"))
    await _admit(request, principal)
    return principal


async def verify_request(request: Request) -> None:
    """Check the request's key against the database now unless that was done already; raises
    :class:`~herewith.errors.Unauthorized` (401) for a revoked key. For endpoints under
    :func:`identify_request`: called before answering anything but success, a revoked key gets
    its 401 first, as with :func:`get_organization`."""
    principal: Principal = request.state.principal
    if not principal.verified:
        request.state.principal = await request.state.authenticator.authenticate(
            request.headers.get("authorization"))


OrganizationDep = Annotated[OrganizationRef, Depends(get_organization)]
