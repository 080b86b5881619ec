"""``/v1/meetings``: thin endpoints (auth, parse, one service call)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from herewith.auth.dependencies import OrganizationDep, SessionDep, identify_request, verify_request
from herewith.kit.json_body import openapi_body, parse_json_body
from herewith.kit.pagination import parse_limit
from herewith.meetings import service
from herewith.meetings.schemas import CreateMeetingRequest, MeetingList, MeetingOut

router = APIRouter(prefix="/meetings", tags=["meetings"])
# The two hottest calls, mounted without the /v1 dependency: each starts with identify_request, so its
# principal may come from the authenticator's identity cache, unverified. Each acts only through
# MeetingStore, whose statement checks the key, and calls verify_request before any answer but success,
# so every answer is the one strict authentication would give.
identified_router = APIRouter(prefix="/meetings", tags=["meetings"])


def _urls(request: Request) -> service.RoomUrls:
    settings = request.state.settings
    return service.RoomUrls(public_url=settings.public_url, signing_key=settings.signing_key)


def _json(body: bytes, status: int = 200) -> Response:
    # Serialized by the service (service.meeting_json): returning a model would make FastAPI validate it
    # again against response_model (which stays for the OpenAPI document) before serializing it.
    return Response(body, status_code=status, media_type="application/json")


# The hottest call: its body is parsed by kit.json_body (same answers as a FastAPI body parameter, less work).
@identified_router.post("", status_code=201, response_model=MeetingOut,
                        openapi_extra=openapi_body(CreateMeetingRequest))
async def create_meeting(request: Request) -> Response:
    """Create a meeting (a transient room). 201 with the Meeting; 400 naming the field for bad input."""
    principal = await identify_request(request)
    try:
        body = parse_json_body(CreateMeetingRequest, request.headers.get("content-type"), await request.body())
        meeting = await service.create_meeting(request.state.meeting_store, principal, body,
                                               request.state.clock.now())
    except Exception:
        await verify_request(request)  # a revoked key's 401 comes before any other error
        raise
    return _json(service.meeting_json(meeting, _urls(request), body.fields or ()), 201)


@router.get("", response_model=MeetingList)
async def list_meetings(request: Request, session: SessionDep, org: OrganizationDep) -> MeetingList:
    """The organization's meetings, oldest first: ``cursor``, ``limit`` (1..100, default 50), ``fields``,
    ``roomName[startsWith]``."""
    q = request.query_params
    fields = service.parse_fields(q.getlist("fields"))
    limit = parse_limit(q.get("limit"))
    rows, cursor = await service.list_meetings(session, org, q.get("cursor"), limit, q.get("roomName[startsWith]"))
    urls = _urls(request)
    return MeetingList(results=[service.to_out(m, urls, fields) for m in rows], cursor=cursor)


@identified_router.get("/{meetingId}", response_model=MeetingOut)
async def get_meeting(meetingId: str, request: Request) -> Response:
    """One meeting; 404 when unknown, deleted or another organization's."""
    principal = await identify_request(request)
    try:
        fields = service.parse_fields(request.query_params.getlist("fields"))
        meeting = await service.get_meeting(request.state.meeting_store, principal, meetingId)
    except Exception:
        await verify_request(request)  # a revoked key's 401 comes before the 404 (or 400)
        raise
    return _json(service.meeting_json(meeting, _urls(request), fields))


@router.delete("/{meetingId}", status_code=204)
async def delete_meeting(meetingId: str, request: Request, session: SessionDep, org: OrganizationDep) -> Response:
    """Delete a meeting: 204, idempotent; everyone in the room is removed at once."""
    meeting = await service.delete_meeting(session, org, meetingId, request.state.clock.now())
    if meeting is not None:
        await session.commit()  # the room must not outlive the acknowledged delete
        await request.state.meeting_events.ended(meeting, "deleted")
    return Response(status_code=204)
