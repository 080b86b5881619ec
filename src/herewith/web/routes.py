"""Room page routes: ``GET /{roomName}`` and the static files of the page.

Status pages: 404 for an unknown room, 410 for a deleted or deactivated one, 400 for URL parameters the
contract forbids (``displayName``, ``externalId``, ``metadata``; CONTRACT.md "Room roles"), 429 for a client
address past ``HEREWITH_ROOM_LOOKUP_RATE_PER_MINUTE`` room-page requests in the last minute (found or not: the
budget bounds guessing room names; see :func:`create_room_lookup_limiter`). A live room gets
the page with its configuration embedded as JSON (``#herewith-config``); the page opens the signaling
WebSocket at ``/signal/{roomName}``.

:func:`install` must run after every other router so ``/{roomName}`` shadows nothing (``/v1``, ``/healthz``).
"""

from __future__ import annotations

import functools
import ipaddress
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from herewith import __version__
from herewith.config import Settings
from herewith.kit import metrics
from herewith.ratelimit.core import RateLimiter, RateLimiterUnavailable
from herewith.ratelimit.setup import create_limiter
from herewith.rooms import service as rooms
from herewith.signaling import protocol as p

HERE = Path(__file__).parent
STATIC_PREFIX = "/room-static"
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)


@functools.cache
def _embed_js() -> bytes:
    return (HERE / "static" / "embed.js").read_bytes()  # 5 kB, read once per process


# Characters that could end or change the meaning of a <script> element's text, or a JavaScript string
# (U+2028/U+2029 end a line in older engines), written as JSON escapes: the JSON value is the same.
_SCRIPT_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                                 "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe as the text of an HTML ``<script>`` element (``application/json`` or
    JavaScript): ``<``, ``>``, ``&``, U+2028 and U+2029 are written as ``\\u003c``-style escapes, so no
    ``</script>``, ``<!--`` or ``<script`` can appear, and ``json.loads`` gives back ``value``.

    >>> script_json({"metadata": "<!--<script>"})
    '{"metadata": "\\\\u003c!--\\\\u003cscript\\\\u003e"}'
    """
    return json.dumps(value).translate(_SCRIPT_ESCAPES)


def _status_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "status.html",
        {"status": status, "title": title, "message": message, "static": STATIC_PREFIX, "version": __version__},
        status_code=status, headers={"Cache-Control": "no-store"},
    )


def create_room_lookup_limiter(settings: Settings) -> RateLimiter | None:
    """The limiter of room-page requests per client address, or None when ``room_lookup_rate_per_minute`` is 0.

    The API's limiter (:func:`herewith.ratelimit.setup.create_limiter`: in process, or Redis when
    ``redis_url`` is set, so every process shares one budget per address; ``ratelimit_fail_open``) with a
    window of 60 s whatever ``ratelimit_window_seconds`` says, and on even when ``ratelimit_enabled`` is off.
    """
    if settings.room_lookup_rate_per_minute <= 0:
        return None
    return create_limiter(settings.model_copy(update={"ratelimit_enabled": True, "ratelimit_window_seconds": 60.0}))


def client_key(host: str) -> str:
    """The throttle key of a client address: ``room-lookup:<IPv4>``, or the /64 of an IPv6 address (one
    host is given a whole /64), or the text as it came (a Unix socket, a test client)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"room-lookup:{host}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"room-lookup:{address.ipv4_mapped}"
        return f"room-lookup:{ipaddress.IPv6Network((address, 64), strict=False)}"
    return f"room-lookup:{address}"


async def _too_many_lookups(request: Request) -> Response | None:
    """Count this room-page request against its client address (``request.client.host``: uvicorn applies
    ``X-Forwarded-For`` from trusted proxies); the 429 page with ``Retry-After`` (whole seconds) when it is
    over the budget, else None. When the limiter's store is unreachable the page is served (a room page does
    not go down with Redis)."""
    limiter: RateLimiter | None = getattr(request.state, "room_lookup_limiter", None)
    if limiter is None or request.client is None:
        return None
    key = client_key(request.client.host)
    limit = request.state.settings.room_lookup_rate_per_minute
    decision = limiter.try_hit(key, 1, limit)
    if decision is None:
        try:
            decision = await limiter.hit(key, 1, limit)
        except RateLimiterUnavailable:
            return None
    if decision.allowed:
        return None
    metrics.RATE_LIMIT_REFUSALS.labels("room_page").inc()
    page = _status_page(request, 429, "Too many requests",
                        "Too many room links were opened from your network. Wait a minute and try again.")
    page.headers["Retry-After"] = str(decision.retry_after_seconds)
    return page


@router.api_route("/embed.js", methods=["GET", "HEAD"])
async def embed_script() -> Response:
    """``<herewith-embed>`` (``static/embed.js``, an ES module) for pages of any origin: module scripts are
    fetched with CORS, so it carries ``Access-Control-Allow-Origin: *`` (it is public code and reads nothing of
    the visitor's). Declared before ``/{roomName}``, which would otherwise take the path for a room name."""
    return Response(_embed_js(), media_type="text/javascript; charset=utf-8",
                    headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300"})


@router.api_route("/{roomName}", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def room_page(roomName: str, request: Request) -> Response:  # noqa: N803
    """The room page for ``/{roomName}``; query: ``roomKey`` (or ``token``, a participant token),
    ``displayName``, ``externalId``, ``metadata``. The room policy's join window and privacy give status
    pages (403 not open yet or private without a valid token, 410 expired)."""
    refused = await _too_many_lookups(request)
    if refused is not None:
        return refused
    q = request.query_params
    try:
        display_name = p.validate_display_name(q.get("displayName"))
        external_id = p.validate_external_id(q.get("externalId"))
        metadata = p.validate_metadata(q.get("metadata"))
    except ValueError as exc:
        return _status_page(request, 400, "This link is not valid", str(exc))
    signaling = request.state.signaling
    try:
        ref = await signaling.lookup(roomName)
    except rooms.RoomNotFound:
        return _status_page(request, 404, "Room not found", "There is no meeting room at this address. Check the link you were given.")
    except rooms.RoomGone as gone:
        message = ("This meeting has ended and its room was deleted." if gone.reason == "deleted"
                   else "This meeting room has expired.")
        return _status_page(request, 410, "This meeting is over", message)
    policy = ref.policy
    try:
        rooms.check_open(policy, signaling.clock.now())
    except rooms.RoomNotOpen as not_open:
        return _status_page(request, 403, "This meeting has not started yet", not_open.message)
    except rooms.RoomGone:
        return _status_page(request, 410, "This meeting is over", "This meeting room has expired.")
    token = q.get("token") or q.get("roomKey")
    claims = signaling.claims_for(token, ref.room_name, ref.organization_id)
    if policy.private and not policy.request_to_join and claims is None:
        return _status_page(request, 403, "This room is private",
                            "You need an invitation link with a valid token to join this meeting.")
    config: dict[str, Any] = {
        "roomName": ref.room_name,
        "roomMode": ref.room_mode,
        "signalUrl": "/signal/" + ref.room_name.lstrip("/"),
        "displayName": display_name,
        "externalId": external_id,
        "metadata": metadata,
        "locked": ref.is_locked or policy.private,
        # the room policy's pre-call defaults (herewith.rooms.policy), a token's own ones first
        "precall": {
            "video": claims.join_video_on if claims and claims.join_video_on is not None else policy.join_video_on,
            "audio": claims.join_audio_on if claims and claims.join_audio_on is not None else policy.join_audio_on,
            "autoJoin": policy.auto_join,
            # no camera asked for where the room (or the token) lets nobody send video: the server would refuse it
            "camera": policy.media_grants(claims is not None and claims.role == "host", claims).video,
        },
        "chat": policy.chat,
        "static": STATIC_PREFIX,
        "version": __version__,
    }
    theme = await _theme(request, ref.room_name)  # room theming: colours, logo and backgrounds for the page
    return templates.TemplateResponse(
        request, "room.html",
        {"config_json": script_json(config), "static": STATIC_PREFIX, "version": __version__,
         "room_name": ref.room_name, "theme": theme},
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


async def _theme(request: Request, room_name: str) -> Any:
    """The room's theme (herewith.theming.service), or None when theming is unavailable."""
    try:
        from herewith.theming.service import get_room_theme
    except ImportError:  # pragma: no cover - theming is optional for the page
        return None
    try:
        async with request.state.read_sessionmaker() as session:
            return await get_room_theme(session, room_name)
    except Exception:  # noqa: BLE001 - a broken theme must not keep people out of their meeting
        return None


def install(app: FastAPI) -> None:
    """Mount the static files and the room page route. Call last in ``create_app``."""
    app.mount(STATIC_PREFIX, StaticFiles(directory=str(HERE / "static")), name="room-static")
    app.include_router(router)
