"""All SQL of the webhooks domain."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from herewith.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent


async def get_endpoint(session: AsyncSession, organization_id: str, endpoint_id: str) -> WebhookEndpoint | None:
    return await session.scalar(
        select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.organization_id == organization_id)
    )


async def list_endpoints(
    session: AsyncSession, organization_id: str | None, after_seq: int | None = None, limit: int | None = None
) -> Sequence[WebhookEndpoint]:
    """Endpoints oldest first (of one organization, or all when ``organization_id`` is None)."""
    stmt = select(WebhookEndpoint)
    if organization_id is not None:
        stmt = stmt.where(WebhookEndpoint.organization_id == organization_id)
    if after_seq is not None:
        stmt = stmt.where(WebhookEndpoint.seq > after_seq)
    stmt = stmt.order_by(WebhookEndpoint.seq)
    if limit is not None:
        stmt = stmt.limit(limit)
    return (await session.scalars(stmt)).all()


async def enabled_endpoints(session: AsyncSession, organization_id: str,
                            meeting_id: str | None = None) -> Sequence[WebhookEndpoint]:
    """The organization's enabled endpoints for events of ``meeting_id``'s room: those of the whole
    organization and those of that room alone (per-room webhook URLs); without ``meeting_id`` the first only."""
    scope = WebhookEndpoint.meeting_id.is_(None)
    if meeting_id is not None:
        scope = or_(scope, WebhookEndpoint.meeting_id == meeting_id)
    return (
        await session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.organization_id == organization_id, WebhookEndpoint.enabled.is_(True), scope)
            .order_by(WebhookEndpoint.seq)
        )
    ).all()


async def room_endpoints(session: AsyncSession, meeting_id: str) -> Sequence[WebhookEndpoint]:
    """The endpoints of one room (per-room webhook URLs), oldest first."""
    return (await session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.meeting_id == meeting_id).order_by(WebhookEndpoint.seq))).all()


async def list_deliveries(
    session: AsyncSession, endpoint_id: str, before_seq: int | None, limit: int
) -> Sequence[WebhookDelivery]:
    """Attempts newest first."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if before_seq is not None:
        stmt = stmt.where(WebhookDelivery.seq < before_seq)
    return (await session.scalars(stmt.order_by(WebhookDelivery.seq.desc()).limit(limit))).all()


async def get_event_for_endpoint(session: AsyncSession, endpoint_id: str, event_id: str) -> WebhookEvent | None:
    return await session.scalar(
        select(WebhookEvent).where(WebhookEvent.endpoint_id == endpoint_id, WebhookEvent.event_id == event_id)
    )


async def commit_without_flush_wait(session: AsyncSession) -> None:
    """PostgreSQL: this transaction's commit returns without waiting for its WAL record to reach the disk
    (``SET LOCAL synchronous_commit TO OFF``, this transaction only; PostgreSQL docs, "Asynchronous Commit").
    A database crash may then lose the last few hundred milliseconds of such commits, never corrupt them.
    Only for the delivery worker's claims and outcomes, where a lost commit means the event is sent again
    (at least once), never lost. SQLite: nothing to do."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL synchronous_commit TO OFF"))


PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"
WAITING = (PENDING, SENDING)  # not finished: waiting for an attempt, or in one (a lease that may run out)
CANDIDATES_PER_PLACE = 8  # ready_events: candidates looked at per event asked for


async def ready_events(
    session: AsyncSession, now: datetime, per_endpoint: int, limit: int, exclude_endpoints: Collection[str] = (),
    exclude_events: Collection[str] = (),
) -> Sequence[WebhookEvent]:
    """Up to ``limit`` events to send now, at most ``per_endpoint`` in flight per endpoint, locked for this
    transaction.

    Due: ``pending``, or ``sending`` with its lease run out (the worker died), and ``next_attempt_at <= now``.
    Per endpoint, due events are taken in ``(next_attempt_at, seq)`` order and only as many as the endpoint has
    free places: ``per_endpoint`` minus its events in flight (``sending`` with a lease that has not run out,
    in any process). Endpoints in ``exclude_endpoints`` and events whose ``id`` is in ``exclude_events`` are
    skipped. Across endpoints: oldest due first.

    PostgreSQL: ``FOR UPDATE OF webhook_events SKIP LOCKED`` so concurrent workers take disjoint rows, and a
    worker never takes a row another one is claiming (its endpoint's place is taken). SQLite has one writer at a
    time and ignores the clause; :func:`claim` re-checks each row and the endpoint's places.
    """
    due = and_(WebhookEvent.state.in_(WAITING), WebhookEvent.next_attempt_at <= now)
    ranked_where = [due]
    if exclude_endpoints:
        ranked_where.append(WebhookEvent.endpoint_id.not_in(list(exclude_endpoints)))
    if exclude_events:
        ranked_where.append(WebhookEvent.id.not_in(list(exclude_events)))
    ranked = (
        select(
            WebhookEvent.seq.label("seq"),
            WebhookEvent.endpoint_id.label("endpoint_id"),
            WebhookEvent.next_attempt_at.label("next_attempt_at"),
            func.row_number()
            .over(partition_by=WebhookEvent.endpoint_id, order_by=(WebhookEvent.next_attempt_at, WebhookEvent.seq))
            .label("position"),
        )
        .where(*ranked_where)
        .subquery("ranked")
    )
    busy = (
        select(WebhookEvent.endpoint_id.label("endpoint_id"), func.count().label("n"))
        .where(WebhookEvent.state == SENDING, WebhookEvent.next_attempt_at > now)
        .group_by(WebhookEvent.endpoint_id)
        .subquery("busy")
    )
    chosen = (
        select(ranked.c.seq)
        .select_from(ranked.outerjoin(busy, busy.c.endpoint_id == ranked.c.endpoint_id))
        .where(ranked.c.position + func.coalesce(busy.c.n, 0) <= per_endpoint)
        .order_by(ranked.c.next_attempt_at, ranked.c.seq)
        .limit(limit * CANDIDATES_PER_PLACE)
    )
    # Two statements: with the candidates inline, PostgreSQL's planner (on a queue that grew faster than its
    # statistics) re-ran the ranking for every due row. The locking statement re-checks what it takes and
    # skips rows other workers are claiming, hence more candidates than places.
    seqs = list((await session.scalars(chosen)).all())
    if not seqs:
        return []
    stmt = (
        select(WebhookEvent)
        .where(due, WebhookEvent.seq.in_(seqs))
        .order_by(WebhookEvent.next_attempt_at, WebhookEvent.seq)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookEvent)
    )
    return (await session.scalars(stmt)).all()


async def next_ready_event(
    session: AsyncSession, endpoint_id: str, now: datetime, exclude_events: Collection[str] = ()
) -> WebhookEvent | None:
    """The endpoint's first due event in ``(next_attempt_at, seq)`` order (ids in ``exclude_events`` skipped),
    locked for this transaction (PostgreSQL: ``FOR UPDATE SKIP LOCKED``); None if there is none. The caller
    claims it with :func:`claim`, which checks the endpoint's places."""
    stmt = select(WebhookEvent).where(
        WebhookEvent.endpoint_id == endpoint_id, WebhookEvent.state.in_(WAITING), WebhookEvent.next_attempt_at <= now)
    if exclude_events:
        stmt = stmt.where(WebhookEvent.id.not_in(list(exclude_events)))
    stmt = (stmt.order_by(WebhookEvent.next_attempt_at, WebhookEvent.seq).limit(1)
            .with_for_update(skip_locked=True, of=WebhookEvent))
    return await session.scalar(stmt)


async def claim(
    session: AsyncSession, event: WebhookEvent, seen_next_attempt_at: datetime, lease_until: datetime, now: datetime,
    per_endpoint: int,
) -> bool:
    """Mark the event ``sending`` until ``lease_until`` (one more attempt) if no one else did first and its
    endpoint has fewer than ``per_endpoint`` events in flight; True when this caller owns it now."""
    busy = aliased(WebhookEvent)
    in_flight = (
        select(func.count())
        .select_from(busy)
        .where(busy.endpoint_id == event.endpoint_id, busy.state == SENDING, busy.next_attempt_at > now)
        .scalar_subquery()
    )
    result = await session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.id == event.id,
            WebhookEvent.state.in_(WAITING),
            WebhookEvent.next_attempt_at == seen_next_attempt_at,
            in_flight < per_endpoint,
        )
        .values(state=SENDING, next_attempt_at=lease_until, attempts=WebhookEvent.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def hold_endpoint(session: AsyncSession, endpoint_id: str, until: datetime, now: datetime,
                        except_event_id: str) -> None:
    """After a failed attempt at the endpoint: its ``pending`` events wait until ``until`` (none is due before),
    and those whose retry window ended (``give_up_at <= now``) are ``failed``. ``except_event_id`` (the event
    whose attempt failed, moved on by the caller) is left alone; events in flight are too."""
    await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.endpoint_id == endpoint_id, WebhookEvent.state == PENDING,
               WebhookEvent.give_up_at <= now, WebhookEvent.id != except_event_id)
        .values(state=FAILED)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.endpoint_id == endpoint_id, WebhookEvent.state == PENDING,
               WebhookEvent.next_attempt_at < until, WebhookEvent.id != except_event_id)
        .values(next_attempt_at=until)
        .execution_options(synchronize_session=False)
    )


async def queue_stats(session: AsyncSession) -> tuple[dict[str, int], datetime | None]:
    """The outbox's unfinished events: ``({"pending": n, "sending": n}, created_at of the oldest or None)``.

    One grouped statement over the ``(state, next_attempt_at)`` index; for the ``/metrics`` gauges (webhook
    queue depth, age of the oldest pending event), read through the read engine off the relay path.
    """
    rows = (await session.execute(
        select(WebhookEvent.state, func.count(), func.min(WebhookEvent.created_at))
        .where(WebhookEvent.state.in_(WAITING))
        .group_by(WebhookEvent.state)
    )).all()
    depth = {state: 0 for state in WAITING}
    oldest: datetime | None = None
    for state, count, first in rows:
        depth[state] = int(count)
        if first is not None and (oldest is None or first < oldest):
            oldest = first
    return depth, oldest
