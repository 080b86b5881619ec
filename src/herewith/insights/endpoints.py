"""``/v1/insights``: thin endpoints (auth, parse, one service call)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from herewith.auth.dependencies import OrganizationDep, SessionDep
from herewith.db.reports import ReportRunner
from herewith.errors import error_response
from herewith.insights import service
from herewith.insights.schemas import (
    ParticipantDetail,
    ParticipantInsightList,
    RoomInsightList,
    RoomSessionInsightList,
)
from herewith.kit.pagination import parse_limit

router = APIRouter(prefix="/insights", tags=["insights"])


def _parameter(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    """An OpenAPI query parameter: these endpoints read ``request.query_params`` themselves (bracketed names),
    so FastAPI cannot describe them."""
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _sort(fields: tuple[str, ...], default: str) -> dict[str, Any]:
    values = [f"{field}:{direction}" for field in fields for direction in ("asc", "desc")]
    return _parameter("sortBy", {"type": "string", "enum": values}, f"field:asc or field:desc (default {default}).")


def _page(noun: str) -> list[dict[str, Any]]:
    return [
        _parameter("cursor", {"type": "string"}, "The cursor of the previous page (opaque)."),
        _parameter("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": service.DEFAULT_LIMIT},
                   f"{noun} per page."),
    ]


_DATE = {"type": "string", "format": "date-time"}
ROOMS_PARAMETERS = [
    _parameter("roomName[exact]", {"type": "string"}, "Only this room (leading / optional)."),
    _parameter("roomName[startsWith]", {"type": "string"}, "Only rooms whose name starts with this."),
    _parameter("roomName[contains]", {"type": "string"}, "Only rooms whose name contains this."),
    _parameter("createdAt[from]", _DATE, "Only rooms created at or after this (1970 to 9999)."),
    _parameter("createdAt[to]", _DATE, "Only rooms created at or before this (1970 to 9999)."),
    _sort(service.ROOM_SORT_FIELDS, "createdAt:asc"),
    *_page("Rooms"),
]
ROOM_SESSIONS_PARAMETERS = [
    _parameter("roomName", {"type": "string"}, "The room (leading / optional).", required=True),
    _parameter("roomSessionId", {"type": "string"}, "Only this session of the room."),
    _sort(service.SESSION_SORT_FIELDS, "startedAt:asc"),
    *_page("Sessions"),
]
PARTICIPANTS_PARAMETERS = [
    _parameter("roomSessionId", {"type": "string"}, "Participants of this session (this or externalId is required)."),
    _parameter("externalId", {"type": "string"}, "Participants with this externalId, in any session."),
    _sort(service.PARTICIPANT_SORT_FIELDS, "joinedAt:asc"),
    *_page("Participants"),
]
PARTICIPANT_PARAMETERS = [
    _parameter("roomSessionId", {"type": "string"}, "The session.", required=True),
    _parameter("participantId", {"type": "string"}, "The participant.", required=True),
]


def _query(request: Request) -> dict[str, str | None]:
    return dict(request.query_params.items())


def _reports(request: Request) -> ReportRunner:
    return request.state.reports  # the lifespan state (create_app)


@router.get("/rooms", response_model=RoomInsightList, openapi_extra={"parameters": ROOMS_PARAMETERS})
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


@router.get("/room-sessions", response_model=RoomSessionInsightList,
            openapi_extra={"parameters": ROOM_SESSIONS_PARAMETERS},
            responses={404: error_response("No room of this organization has that name.")})
async def room_sessions(request: Request, org: OrganizationDep) -> RoomSessionInsightList:
    """Sessions of one room (``roomName`` required), with totals (on the reports thread: a long-lived room
    has many sessions)."""
    q = request.query_params
    query, cursor_in = _query(request), q.get("cursor")
    limit, now = parse_limit(q.get("limit"), service.DEFAULT_LIMIT), request.state.clock.now()
    results, cursor = await _reports(request).run(
        lambda session: service.room_session_insights(session, org.id, query, cursor_in, limit, now))
    return RoomSessionInsightList(cursor=cursor, results=results)


@router.get("/participants", response_model=ParticipantInsightList,
            openapi_extra={"parameters": PARTICIPANTS_PARAMETERS})
async def participants(request: Request, session: SessionDep, org: OrganizationDep) -> ParticipantInsightList:
    """Participants of a session (``roomSessionId``) or with an ``externalId``; ``sortBy`` joinedAt|leftAt."""
    q = request.query_params
    results, cursor = await service.participant_insights(
        session, org.id, _query(request), q.get("cursor"), parse_limit(q.get("limit"), service.DEFAULT_LIMIT)
    )
    return ParticipantInsightList(cursor=cursor, results=results)


@router.get("/participant", response_model=list[ParticipantDetail],
            openapi_extra={"parameters": PARTICIPANT_PARAMETERS},
            responses={404: error_response("No such participant in a session of this organization.")})
async def participant(request: Request, session: SessionDep, org: OrganizationDep) -> list[ParticipantDetail]:
    """One participant's connections in a session with their WebRTC samples."""
    q = request.query_params
    return await service.participant_detail(session, org.id, q.get("roomSessionId"), q.get("participantId"))
