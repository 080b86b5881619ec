"""Recordings over HTTP and WebSocket: thin endpoints (auth, parse, one service call).

``router`` (under ``/v1``, with the Bearer dependency; CONTRACT.md "Recordings"):

| call | success |
| --- | --- |
| GET /recordings ``roomName``, ``sortBy``, ``cursor``, ``limit`` | 200 ``{results: Recording[], cursor}`` |
| GET /recordings/{recordingId} | 200 Recording |
| DELETE /recordings/{recordingId} | 204, idempotent |
| GET /recordings/{recordingId}/access-link ``validForSeconds`` (1..43200, default 3600) | 200 ``{accessLink, expires}`` |
| POST /recordings/bulk-delete ``{"recordingIds": [...]}`` | 204, idempotent |

``public_router`` (no API key): ``GET /recordings/files/{recordingId}/{filename}?token=`` (an access link of
a locally stored recording; HTTP Range requests answered with 206) and the recorder's ingest WebSocket
``/record/ingest/{recordingId}?token=&stream=&mime=`` (:mod:`herewith.recordings.ingest`).
"""

from __future__ import annotations

import asyncio

import structlog
from fastapi import APIRouter, Request, Response, WebSocket
from fastapi.responses import FileResponse
from starlette.websockets import WebSocketDisconnect

from herewith.auth.dependencies import OrganizationDep, SessionDep
from herewith.errors import Forbidden, NotFound
from herewith.kit.pagination import parse_limit
from herewith.recordings import service
from herewith.recordings.ingest import IngestRefused
from herewith.recordings.schemas import AccessLinkOut, BulkDeleteRequest, RecordingList, RecordingOut
from herewith.recordings.storage import LocalStorage

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/recordings", tags=["recordings"], strict_content_type=False)
public_router = APIRouter(include_in_schema=False)


async def _after_delete(request: Request, ids: list[str]) -> None:
    """After the commit: stop those still running here, and wake the job that removes files."""
    control = request.state.recordings
    for recording_id in ids:
        await control.stop_recording(recording_id, "deleted")
    request.state.recording_wakeup.set()


@router.get("", response_model=RecordingList)
async def list_recordings(request: Request, session: SessionDep, org: OrganizationDep) -> RecordingList:
    """The organization's recordings, newest first by default (``sortBy=startDate:desc``)."""
    q = request.query_params
    rows, cursor = await service.list_recordings(session, org.id, q.get("roomName"), q.get("sortBy"),
                                                 q.get("cursor"), parse_limit(q.get("limit")))
    return RecordingList(results=[service.to_out(r) for r in rows], cursor=cursor)


@router.post("/bulk-delete", status_code=204)
async def bulk_delete(body: BulkDeleteRequest, request: Request, session: SessionDep, org: OrganizationDep) -> Response:
    """Delete the listed recordings (ids that are unknown, another organization's or deleted are ignored)."""
    rows = await service.delete_recordings(session, org.id, body.recordingIds, request.state.clock.now())
    await session.commit()
    await _after_delete(request, [r.id for r in rows])
    return Response(status_code=204)


@router.get("/{recordingId}", response_model=RecordingOut)
async def get_recording(recordingId: str, session: SessionDep, org: OrganizationDep) -> RecordingOut:  # noqa: N803
    return service.to_out(await service.get_recording(session, org.id, recordingId))


@router.delete("/{recordingId}", status_code=204)
async def delete_recording(recordingId: str, request: Request, session: SessionDep, org: OrganizationDep) -> Response:  # noqa: N803
    """Delete a recording and its files (a running one is stopped first). 204 whether or not it existed."""
    rows = await service.delete_recordings(session, org.id, [recordingId], request.state.clock.now())
    await session.commit()
    await _after_delete(request, [r.id for r in rows])
    return Response(status_code=204)


@router.get("/{recordingId}/access-link", response_model=AccessLinkOut)
async def access_link(recordingId: str, request: Request, session: SessionDep, org: OrganizationDep) -> AccessLinkOut:  # noqa: N803
    """A download link valid ``validForSeconds``; 409 while the recording is not ready."""
    settings = request.state.settings
    valid_for = service.parse_valid_for(request.query_params.get("validForSeconds"))
    url, expires = await service.access_link(session, org.id, recordingId, valid_for, request.state.clock.now(),
                                             settings)
    return AccessLinkOut(accessLink=url, expires=expires)


@public_router.api_route(service.FILE_ROUTE + "/{recordingId}/{filename}", methods=["GET", "HEAD"])
async def download(recordingId: str, filename: str, request: Request, session: SessionDep) -> Response:  # noqa: N803
    """The file of a recording in local storage, for the holder of an unexpired access link token: 200, or
    206 for a ``Range`` request; 403 for a missing, wrong or expired token, 404 when it is gone."""
    settings = request.state.settings
    try:
        service.verify_token(settings.signing_key, request.query_params.get("token") or "", recordingId, "download",
                             request.state.clock.now())
    except service.InvalidToken:
        raise Forbidden() from None
    recording = await service.downloadable(session, recordingId, filename)
    path = LocalStorage(settings.data_dir / "recordings").path(recording.storage_key or "")
    if not await asyncio.to_thread(path.is_file):
        raise NotFound()
    return FileResponse(path, media_type=service.content_type(recording.file_format), filename=recording.filename,
                        headers={"Cache-Control": "private, no-store"})


@public_router.websocket("/record/ingest/{recordingId}")
async def ingest(ws: WebSocket, recordingId: str) -> None:  # noqa: N803
    """A recorder's stream: binary frames appended in order; see :mod:`herewith.recordings.ingest`. A refused
    connection is accepted and closed at once with a 44xx code and the reason."""
    control = ws.state.recordings
    q = ws.query_params
    await ws.accept()
    try:
        stream = await control.open_stream(recordingId, q.get("token"), q.get("stream"), q.get("mime"))
    except IngestRefused as refused:
        await ws.close(refused.code, refused.reason)
        return

    def kick() -> None:
        asyncio.get_running_loop().create_task(_close(ws))

    stream.kick = kick
    try:
        while True:
            event = await ws.receive()
            if event["type"] == "websocket.disconnect":
                break
            data = event.get("bytes")
            if data is not None:
                if not await stream.write(data):
                    if stream.closed.is_set():
                        await _close(ws, 4409, "replaced by a newer connection of this stream")
                    else:
                        await _close(ws, 1009, "stream too large")
                    break
            elif event.get("text"):
                control.stream_meta(stream, event["text"], recordingId)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        await control.stream_closed(recordingId, stream)


async def _close(ws: WebSocket, code: int = 1000, reason: str = "recording stopped") -> None:
    try:
        await ws.close(code, reason)
    except Exception:  # noqa: BLE001 - already closed
        pass
