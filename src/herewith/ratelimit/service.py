"""Changing an organization's budget (``herewith orgs set-limit``). Takes the session first; never commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from herewith.auth import repository as auth_repository
from herewith.auth.models import Organization
from herewith.errors import NotFound, validation_error

from .core import PLAN_POINTS, budget_for


async def set_limit(session: AsyncSession, organization_id: str, *, plan: str | None = None,
                    points: int | None = None) -> Organization:
    """Give an organization a plan (``build`` 100 / ``grow`` 1000 points per minute, clearing any custom
    budget) or a custom budget of ``points`` (>= 1; the plan stays but no longer applies). Exactly one of
    ``plan`` and ``points``. Takes effect on the organization's next request, in every process.

    Raises :class:`NotFound` for an unknown organization and a 400 for a bad plan or points.
    """
    if (plan is None) == (points is None):
        raise validation_error("limit", "give exactly one of plan or points")
    org = await auth_repository.get_organization(session, organization_id)
    if org is None:
        raise NotFound(f"No organization {organization_id}")
    if plan is not None:
        if plan not in PLAN_POINTS:
            raise validation_error("plan", "must be one of " + ", ".join(PLAN_POINTS))
        org.plan = plan
        org.rate_limit_points = None
    else:
        if points is None or points < 1:
            raise validation_error("points", "must be a positive integer")
        org.rate_limit_points = points
    await session.flush()
    return org


def describe_limit(org: Organization) -> str:
    """``"<points> points/min (<plan plan | custom>)"`` for the CLI."""
    source = "custom" if org.rate_limit_points is not None else f"{org.plan} plan"
    return f"{budget_for(org.plan, org.rate_limit_points)} points/min ({source})"
