"""``PUT /v1/rooms/{roomName}/theme/*`` (CONTRACT.md, "Room theming") and the public ``/themes/*`` images.

Thin endpoints: auth, parse the body (JSON or multipart ``image``), one service call. ``roomName`` in the
path may come with its leading slash URL-encoded (``%2Froom-1``), literal (``/rooms//room-1/...``) or
without it (``room-1``): all name the room ``/room-1``.

Public (no auth: room pages need them), each with ``ETag`` and ``Cache-Control`` (``If-None-Match`` -> 304):

- ``GET /themes/rooms/{roomName}/{kind}``: the room's current ``logo`` | ``room-background`` |
  ``room-knock-page-background`` (uploaded, or the built-in one). With ``?v=`` equal to the current
  version it is cacheable for a year; otherwise clients revalidate.
- ``GET /themes/presets/{palette}/{theme}.jpg``: a built-in background.
- ``GET /themes/logo-default.png``: Herewith's own logo.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from herewith.auth.dependencies import OrganizationDep, SessionDep
from herewith.errors import BadRequest, NotFound, validation_error
from herewith.theming import service as service
from herewith.theming.images import MAX_BYTES, CheckedImage, check_upload
from herewith.theming.schemas import (
    IMAGE_KINDS,
    BackgroundPresetRequest,
    ImageKind,
    LogoResetRequest,
    ThemeTokensRequest,
)
from herewith.theming.storage import ThemeStore

CONTENT_TYPE_ERROR = "Content-Type must be multipart/form-data or application/json"

router = APIRouter(prefix="/rooms", tags=["room theming"])
public_router = APIRouter(prefix="/themes", include_in_schema=False)

M = TypeVar("M", bound=BaseModel)


# ---- request parsing -------------------------------------------------------------------------------------

def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _require_content_type(request: Request) -> str:
    ctype = _media_type(request)
    if ctype not in ("application/json", "multipart/form-data"):
        raise BadRequest(CONTENT_TYPE_ERROR, data={"Content-Type": ctype or "missing"})
    return ctype


async def _json_body(model: type[M], request: Request) -> M:
    """The request's JSON body as ``model`` (the Content-Type was checked already).

    Parsed here, not by a FastAPI body parameter, because these routes take JSON or a multipart upload. The
    errors are raised in FastAPI's shape (``loc`` from ``"body"``), so :mod:`herewith.errors` answers them
    with the same 400s as every body: malformed JSON, not an object, or a field named."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in errors]) from None


async def _uploaded_image(request: Request, kind: ImageKind) -> CheckedImage:
    """The multipart ``image`` field, decoded, checked and re-encoded (400/413 naming ``image``;
    :func:`~herewith.theming.images.check_upload`: at most two decodes at a time in the process)."""
    try:
        async with request.form(max_files=4, max_fields=20) as form:
            upload = form.get("image")
            if upload is None:
                raise validation_error("image", "is required: a PNG or JPEG file")
            if not isinstance(upload, UploadFile):
                raise validation_error("image", "must be a file (multipart part with a filename)")
            data = await upload.read(MAX_BYTES[kind] + 1)
    except (MultiPartException, StarletteHTTPException) as exc:
        raise validation_error("image", f"malformed multipart body ({getattr(exc, 'detail', exc)})") from None
    return await check_upload(data, kind)


def _store(request: Request) -> ThemeStore:
    return request.state.theme_store  # the lifespan state (create_app)


async def _apply_image(request: Request, session: Any, org: Any, room_name: str, kind: ImageKind,
                       image: CheckedImage | None, preset: BackgroundPresetRequest | None = None) -> Response:
    store = _store(request)
    obsolete = await service.set_image(session, store, org, room_name, kind, image, request.state.clock.now(),
                                       preset)
    await session.commit()  # the old file may go only once nothing refers to it
    if obsolete:
        await asyncio.to_thread(store.remove, obsolete)
    return Response(status_code=204)


_IMAGE_BODY = {
    "multipart/form-data": {"schema": {"type": "object", "properties": {"image": {"type": "string", "format": "binary"}}}},
}


_SCHEMA_REF = "#/components/schemas/{model}"


def _openapi(model: type[BaseModel], multipart: bool = True) -> dict[str, Any]:
    """``openapi_extra`` of a route whose body :func:`_json_body` parses: ``model`` as JSON (a $ref into
    ``components.schemas``, filled by :func:`register_body_schemas`), and with ``multipart`` the upload."""
    content: dict[str, Any] = {"application/json": {"schema": {"$ref": _SCHEMA_REF.format(model=model.__name__)}}}
    if multipart:
        content.update(_IMAGE_BODY)
    return {"requestBody": {"required": True, "content": content}}


def register_body_schemas(app: FastAPI, models: Iterable[type[BaseModel]]) -> None:
    """Add ``models`` (and the models they use) to the app's OpenAPI ``components.schemas`` when the document
    is first built: FastAPI adds only the models of its own body parameters, and these routes have none."""
    models = tuple(models)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            _, defs = models_json_schema([(m, "validation") for m in models], ref_template=_SCHEMA_REF)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


# ---- PUT /v1/rooms/{roomName}/theme/* ----------------------------------------------------------------

@router.put("/{roomName:path}/theme/tokens", status_code=204,
            openapi_extra=_openapi(ThemeTokensRequest, multipart=False))
async def set_theme_tokens(roomName: str, request: Request, session: SessionDep, org: OrganizationDep) -> Response:
    """Set the room's colours. JSON ``{"tokens": {"colors": {"primary", "secondary", "focus"}},
    "tokensPreset": "custom"|"default"}``, colours ``#RRGGBB``. 204; 400 naming a bad colour; 404."""
    if _require_content_type(request) != "application/json":
        raise validation_error("body", "colour tokens must be sent as application/json")
    body = await _json_body(ThemeTokensRequest, request)
    await service.set_tokens(session, org, roomName, body, request.state.clock.now())
    return Response(status_code=204)


@router.put("/{roomName:path}/theme/logo", status_code=204,
            openapi_extra=_openapi(LogoResetRequest))
async def set_theme_logo(roomName: str, request: Request, session: SessionDep, org: OrganizationDep) -> Response:
    """Upload the room's logo (multipart ``image``, PNG or JPEG) or reset it with JSON
    ``{"theme": "default"}``. 204; 400 naming ``image``/``theme``; 404."""
    if _require_content_type(request) == "application/json":
        await _json_body(LogoResetRequest, request)
        return await _apply_image(request, session, org, roomName, "logo", None)
    image = await _uploaded_image(request, "logo")
    return await _apply_image(request, session, org, roomName, "logo", image)


async def _set_background(kind: ImageKind, roomName: str, request: Request, session: Any, org: Any) -> Response:
    if _require_content_type(request) == "application/json":
        preset = await _json_body(BackgroundPresetRequest, request)
        return await _apply_image(request, session, org, roomName, kind, None, preset)
    image = await _uploaded_image(request, kind)
    return await _apply_image(request, session, org, roomName, kind, image)


@router.put("/{roomName:path}/theme/room-background", status_code=204,
            openapi_extra=_openapi(BackgroundPresetRequest))
async def set_theme_room_background(roomName: str, request: Request, session: SessionDep,
                                    org: OrganizationDep) -> Response:
    """Room background: multipart ``image`` (PNG or JPEG, at most 600 kB; 413 beyond) or JSON
    ``{"palette": default|grey|purple|burgund, "theme": default|mountains|characters|rocks}``. 204."""
    return await _set_background("room-background", roomName, request, session, org)


@router.put("/{roomName:path}/theme/room-knock-page-background", status_code=204,
            openapi_extra=_openapi(BackgroundPresetRequest))
async def set_theme_knock_background(roomName: str, request: Request, session: SessionDep,
                                     org: OrganizationDep) -> Response:
    """Knock-page background: as ``room-background``. 204."""
    return await _set_background("room-knock-page-background", roomName, request, session, org)


# ---- public images ---------------------------------------------------------------------------------------

def _etag_matches(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    if header.strip() == "*":
        return True
    candidates = {t.strip().removeprefix("W/") for t in header.split(",")}
    return etag in candidates


def _send(request: Request, image: service.ServedImage, cache_control: str) -> Response:
    headers = {"ETag": image.etag, "Cache-Control": cache_control, "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": "default-src 'none'; sandbox"}
    if _etag_matches(request, image.etag):
        return Response(status_code=304, headers=headers)
    return Response(image.data, media_type=image.media_type, headers=headers)


@public_router.api_route("/logo-default.png", methods=["GET", "HEAD"])
async def default_logo(request: Request) -> Response:
    return _send(request, service.builtin_logo(), "public, max-age=86400")


@public_router.api_route("/presets/{palette}/{theme}.jpg", methods=["GET", "HEAD"])
async def preset_background(palette: str, theme: str, request: Request) -> Response:
    return _send(request, await service.builtin_background(palette, theme), "public, max-age=86400")


@public_router.api_route("/rooms/{roomName:path}/{kind}", methods=["GET", "HEAD"])
async def room_image(roomName: str, kind: str, request: Request, session: SessionDep) -> Response:
    if kind not in IMAGE_KINDS:
        raise NotFound()
    image = await service.room_image(session, _store(request), roomName, kind)  # type: ignore[arg-type]
    version = request.query_params.get("v")
    if version and image.version and version == image.version:
        cache = "public, max-age=31536000, immutable"
    else:
        cache = "public, no-cache"
    return _send(request, image, cache)
