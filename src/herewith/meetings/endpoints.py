"""``/v1/meetings``: thin endpoints (auth, parse, one service call)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from herewith.auth.dependencies import OrganizationDep, ReadSessionDep, SessionDep
from herewith.errors import error_response
from herewith.kit.pagination import parse_limit
from herewith.meetings import service
from herewith.meetings.schemas import CreateMeetingRequest, MeetingList, MeetingOut

# strict_content_type=False: a body sent without a Content-Type is read as JSON (FastAPI did so before 0.132,
# and clients written against the vendor's API may leave the header out). FastAPI's strict default guards
# cookie-authenticated apps against cross-site posts; every call here carries a Bearer key, which a browser
# never adds by itself.
router = APIRouter(prefix="/meetings", tags=["meetings"], strict_content_type=False)


def _query(name: str, schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    """An OpenAPI query parameter: these endpoints read ``request.query_params`` themselves (bracketed names,
    ``fields`` repeated or comma-separated), so FastAPI cannot describe them."""
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description, **extra}


FIELDS = _query("fields", {"type": "array", "items": {"type": "string", "enum": ["hostRoomUrl", "viewerRoomUrl"]}},
                "Role URLs to include: comma-separated or repeated.", style="form", explode=False)
LIST_PARAMETERS = [
    _query("cursor", {"type": "string"}, "The cursor of the previous page (opaque)."),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}, "Meetings per page."),
    FIELDS,
    _query("roomName[startsWith]", {"type": "string"}, "Only rooms whose name starts with this (leading / optional)."),
]


def _urls(request: Request) -> service.RoomUrls:
    settings = request.state.settings
    return service.RoomUrls(public_url=settings.public_url, signing_key=settings.signing_key)


def _json(model: BaseModel, status_code: int = 200) -> Response:
    """``model`` as the JSON response, serialized once. Returned as a model, FastAPI would validate it
    against the route's ``response_model`` again before serializing it; ``response_model`` stays on the
    routes for the OpenAPI document."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


@router.post("", status_code=201, response_model=MeetingOut, responses={
    409: error_response("No free room name after several attempts (roomNamePattern human-short only)."),
})
async def create_meeting(body: CreateMeetingRequest, request: Request, session: SessionDep,
                         org: OrganizationDep) -> Response:
    """Create a meeting (a transient room). 201 with the Meeting; 400 naming the field for bad input."""
    meeting = await service.create_meeting(session, org, body, request.state.clock.now())
    return _json(service.to_out(meeting, _urls(request), body.fields or ()), 201)


@router.get("", response_model=MeetingList, openapi_extra={"parameters": LIST_PARAMETERS})
async def list_meetings(request: Request, session: ReadSessionDep, org: OrganizationDep) -> Response:
    """The organization's meetings, oldest first: ``cursor``, ``limit`` (1..100, default 50), ``fields``,
    ``roomName[startsWith]``."""
    q = request.query_params
    fields = service.parse_fields(q.getlist("fields"))
    limit = parse_limit(q.get("limit"))
    rows, cursor = await service.list_meetings(session, org, q.get("cursor"), limit, q.get("roomName[startsWith]"))
    urls = _urls(request)
    return _json(MeetingList(results=[service.to_out(m, urls, fields) for m in rows], cursor=cursor))


@router.get("/{meetingId}", response_model=MeetingOut, openapi_extra={"parameters": [FIELDS]})
async def get_meeting(meetingId: str, request: Request, session: ReadSessionDep, org: OrganizationDep) -> Response:
    """One meeting; 404 when unknown, deleted or another organization's."""
    fields = service.parse_fields(request.query_params.getlist("fields"))
    meeting = await service.get_meeting(session, org, meetingId)
    return _json(service.to_out(meeting, _urls(request), fields))


@router.delete("/{meetingId}", status_code=204)
async def delete_meeting(meetingId: str, request: Request, session: SessionDep, org: OrganizationDep) -> Response:
    """Delete a meeting: 204, idempotent; everyone in the room is removed at once."""
    meeting = await service.delete_meeting(session, org, meetingId, request.state.clock.now())
    if meeting is not None:
        await session.commit()  # the room must not outlive the acknowledged delete
        await request.state.meeting_events.ended(meeting, "deleted")
    return Response(status_code=204)
