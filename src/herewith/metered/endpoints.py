"""``/api/v1``: the second vendor's room API (seed 004), thin endpoints (auth, parse, one service call).

| call | success |
| --- | --- |
| POST /api/v1/room | 200 the room (every option, ``_id``, ``roomName``, ``app``, ``created``) |
| GET /api/v1/rooms | 200 ``[room, ...]`` |
| GET /api/v1/room/{roomName} | 200 the room |
| PUT /api/v1/room/{roomName} | 200 the room, with the options given changed |
| DELETE /api/v1/room/{roomName} | 200 ``{"success": true, "message": "Room deleted"}``; the call ends |
| POST /api/v1/token | 200 ``{"token": ...}`` |

Authentication: the ``secretKey`` query parameter, any Herewith API key of the organization (read from the
database on every request like the Bearer key; the organization's rate limit is charged the same points).
Errors on these routes only are the vendor's ``{"success": false, "message": ...}`` with the HTTP status
(400 bad input, 401 bad key, 404 unknown room, 413, 429); the rest of the server keeps the Whereby body.
These routes are left out of ``/v1/openapi.json`` (the Whereby-compatible document); docs/metered.md
describes them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError

from herewith.auth import service as auth
from herewith.auth.dependencies import SessionDep
from herewith.auth.models import OrganizationRef
from herewith.errors import HerewithError, NotFound, Unauthorized
from herewith.metered import service
from herewith.metered.schemas import CreateRoomRequest, CreateTokenRequest, RoomOptions
from herewith.webhooks.targets import TargetPolicy

log = structlog.get_logger(__name__)


def vendor_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The vendor's error body (seed 004: ``{"success": false, "message": "Invalid request"}``)."""
    return Response(json.dumps({"success": False, "message": message}), status_code=status,
                    media_type="application/json", headers=headers)


def _validation_message(errors: Any) -> str:
    first = errors[0] if errors else {}
    loc = ".".join(str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path"))
    msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if first.get("type") == "json_invalid":
        return "Invalid request: malformed JSON body"
    return f"Invalid request: {loc + ': ' if loc else ''}{msg}"


class VendorErrorRoute(APIRoute):
    """A route whose errors leave in the vendor's body (FastAPI's documented way to wrap one router's
    handling: a custom ``APIRoute.get_route_handler``; the app-wide handlers keep the Whereby body)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return vendor_error(400, _validation_message(exc.errors()))
            except ValidationError as exc:
                return vendor_error(400, _validation_message(exc.errors()))
            except HerewithError as exc:
                return vendor_error(exc.status, exc.message, exc.headers)

        return run


# strict_content_type=False: the vendor's clients may leave out Content-Type (as for /v1/meetings).
router = APIRouter(prefix="/api/v1", route_class=VendorErrorRoute, include_in_schema=False,
                   strict_content_type=False)


async def secret_key_organization(request: Request) -> OrganizationRef:
    """The organization of the ``secretKey`` query parameter (any API key of it), then the rate-limit
    charge, as :func:`herewith.auth.dependencies.get_organization` does for the Bearer key. 401 ``Invalid
    secretKey`` for a missing, unknown or revoked key."""
    key = request.query_params.get("secretKey", "").strip()
    if not key or len(key) > 200:
        raise Unauthorized("Invalid secretKey")
    state = request.state
    async with state.read_engine.connect() as connection:
        try:
            org = await auth.authenticate(connection, key)
        except Unauthorized:
            raise Unauthorized("Invalid secretKey") from None
    charge = state.charge_request
    if charge is not None:
        pending = charge(request, org)
        if pending is not None:
            await pending
    return org


OrgDep = Annotated[OrganizationRef, Depends(secret_key_organization)]


def _json(value: Any) -> Response:
    return Response(json.dumps(value), media_type="application/json")


def _targets(request: Request) -> TargetPolicy:
    return TargetPolicy.from_settings(request.state.settings)


@router.post("/room")
async def create_room(body: CreateRoomRequest, request: Request, org: OrgDep, session: SessionDep) -> Response:
    """Create a room with every option of seed 004; the answer is the room object."""
    meeting = await service.create_room(session, org, body, request.state.clock.now(), _targets(request))
    out = service.room_out(meeting)
    await session.commit()  # the answer names a room that is durable
    return _json(out)


@router.get("/rooms")
async def list_rooms(request: Request, org: OrgDep, session: SessionDep) -> Response:
    return _json([service.room_out(m) for m in await service.list_rooms(session, org)])


@router.get("/room/{roomName}")
async def get_room(roomName: str, request: Request, org: OrgDep, session: SessionDep) -> Response:  # noqa: N803
    return _json(service.room_out(await service.get_room(session, org, roomName)))


@router.put("/room/{roomName}")
async def update_room(roomName: str, request: Request, org: OrgDep, session: SessionDep) -> Response:  # noqa: N803
    """Change the options given in the body (the others stay)."""
    try:
        changes = json.loads(await request.body() or b"{}")
    except ValueError:
        return vendor_error(400, "Invalid request: malformed JSON body")
    if not isinstance(changes, dict):
        return vendor_error(400, "Invalid request: the body must be a JSON object")
    known = {k: v for k, v in changes.items() if k in RoomOptions.model_fields}
    meeting = await service.update_room(session, org, roomName, known, request.state.clock.now(), _targets(request))
    out = service.room_out(meeting)
    await session.commit()
    return _json(out)


@router.delete("/room/{roomName}")
async def delete_room(roomName: str, request: Request, org: OrgDep, session: SessionDep) -> Response:  # noqa: N803
    """Delete the room: everyone in it is removed at once."""
    meeting = await service.delete_room(session, org, roomName, request.state.clock.now())
    await session.commit()  # the room must not outlive the acknowledged delete
    await request.state.meeting_events.ended(meeting, "deleted")
    return _json({"success": True, "message": "Room deleted"})


@router.post("/token")
async def create_token(body: CreateTokenRequest, request: Request, org: OrgDep, session: SessionDep) -> Response:
    """A participant token for ``roomName`` (404 when the organization has no such room) or, with
    ``globalToken``, for all its rooms; the room URL takes it as ``?token=``."""
    if not body.globalToken:
        try:
            await service.get_room(session, org, body.roomName or "")
        except NotFound:
            raise NotFound("Room not found") from None
    return _json({"token": service.issue_token(request.state.settings.signing_key, org, body)})
