"""``/v1/insights``: thin endpoints (auth, parse, one service call)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from herewith.auth.dependencies import OrganizationDep, SessionDep
from herewith.db.reports import ReportRunner
from herewith.insights import service
from herewith.insights.schemas import (
    ParticipantDetail,
    ParticipantInsightList,
    RoomInsightList,
    RoomSessionInsightList,
)
from herewith.kit.pagination import parse_limit

router = APIRouter(prefix="/insights", tags=["insights"])


def _query(request: Request) -> dict[str, str | None]:
    return dict(request.query_params.items())


def _reports(request: Request) -> ReportRunner:
    return request.state.reports  # the lifespan state (create_app)


@router.get("/rooms", response_model=RoomInsightList)
async def rooms(request: Request, org: OrganizationDep) -> RoomInsightList:
    """Rooms that had sessions, with totals: ``roomName[exact|startsWith|contains]``, ``createdAt[from|to]``,
    ``sortBy``, ``cursor``, ``limit`` (default 10). Reads every session and participant row of the
    organization's matching rooms, so it runs on the reports thread (:mod:`herewith.db.reports`)."""
    q = request.query_params
    query, cursor_in = _query(request), q.get("cursor")
    limit, now = parse_limit(q.get("limit"), service.DEFAULT_LIMIT), request.state.clock.now()
    results, cursor = await _reports(request).run(
        lambda session: service.room_insights(session, org.id, query, cursor_in, limit, now))
    return RoomInsightList(cursor=cursor, results=results)


@router.get("/room-sessions", response_model=RoomSessionInsightList)
async def room_sessions(request: Request, org: OrganizationDep) -> RoomSessionInsightList:
    """Sessions of one room (``roomName`` required), with totals (on the reports thread: a long-lived room
    has many sessions)."""
    q = request.query_params
    query, cursor_in = _query(request), q.get("cursor")
    limit, now = parse_limit(q.get("limit"), service.DEFAULT_LIMIT), request.state.clock.now()
    results, cursor = await _reports(request).run(
        lambda session: service.room_session_insights(session, org.id, query, cursor_in, limit, now))
    return RoomSessionInsightList(cursor=cursor, results=results)


@router.get("/participants", response_model=ParticipantInsightList)
async def participants(request: Request, session: SessionDep, org: OrganizationDep) -> ParticipantInsightList:
    """Participants of a session (``roomSessionId``) or with an ``externalId``; ``sortBy`` joinedAt|leftAt."""
    q = request.query_params
    results, cursor = await service.participant_insights(
        session, org.id, _query(request), q.get("cursor"), parse_limit(q.get("limit"), service.DEFAULT_LIMIT)
    )
    return ParticipantInsightList(cursor=cursor, results=results)


@router.get("/participant", response_model=list[ParticipantDetail])
async def participant(request: Request, session: SessionDep, org: OrganizationDep) -> list[ParticipantDetail]:
    """One participant's connections in a session with their WebRTC samples."""
    q = request.query_params
    return await service.participant_detail(session, org.id, q.get("roomSessionId"), q.get("participantId"))
