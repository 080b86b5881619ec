"""Transcriptions over HTTP: thin endpoints (auth, parse, one service call).

``router`` (under ``/v1``, with the Bearer dependency; CONTRACT.md "Recordings, transcriptions, summaries"):

| call | success |
| --- | --- |
| POST /transcriptions ``{"recordingId"}`` | 201 ``{transcriptionId}`` (404 unknown recording, 409 not ready, 503 no speech-to-text here) |
| GET /transcriptions ``roomName``, ``sortBy``, ``cursor``, ``limit`` | 200 ``{results: Transcription[], cursor}`` |
| GET /transcriptions/{transcriptionId} | 200 Transcription |
| DELETE /transcriptions/{transcriptionId} | 204, idempotent |
| GET /transcriptions/{transcriptionId}/access-link ``validForSeconds`` (1..43200, default 3600) | 200 ``{accessLink, expires}`` |
| POST /transcriptions/bulk-delete ``{"transcriptionIds": [...]}`` | 204, idempotent |

``public_router`` (no API key): ``GET /transcriptions/files/{transcriptionId}/{filename}?token=``, the
Markdown file for the holder of an unexpired access link.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from herewith.auth.dependencies import OrganizationDep, SessionDep
from herewith.errors import Forbidden, error_response
from herewith.kit.pagination import parse_limit
from herewith.recordings import service as recordings
from herewith.transcriptions import service
from herewith.transcriptions.schemas import (
    AccessLinkOut,
    BulkDeleteRequest,
    TranscriptionCreate,
    TranscriptionCreated,
    TranscriptionList,
    TranscriptionOut,
)

router = APIRouter(prefix="/transcriptions", tags=["transcriptions"], strict_content_type=False)
public_router = APIRouter(include_in_schema=False)


@router.post("", status_code=201, response_model=TranscriptionCreated, responses={
    404: error_response("No recording of this organization has that id."),
    409: error_response("The recording is not ready yet (data.state says where it is)."),
    503: error_response("Speech-to-text cannot run on this server (data.reason says what is missing)."),
})
async def create_transcription(body: TranscriptionCreate, request: Request, session: SessionDep,
                               org: OrganizationDep) -> TranscriptionCreated:
    """Transcribe a ready recording, each participant's own audio track on its own: 201 at once, the job runs
    in the background (``state`` in_progress -> ready | failed; ``transcription.*`` webhooks)."""
    await request.state.transcriber.check()
    t = await service.create_transcription(session, org.id, body.recordingId, request.state.clock.now(),
                                           request.state.settings)
    await session.commit()
    request.state.transcription_wakeup.set()
    request.state.webhook_wakeup.set()
    return TranscriptionCreated(transcriptionId=t.id)


@router.get("", response_model=TranscriptionList)
async def list_transcriptions(request: Request, session: SessionDep, org: OrganizationDep) -> TranscriptionList:
    """The organization's transcriptions, newest first by default (``sortBy=startDate:desc``)."""
    q = request.query_params
    rows, cursor = await service.list_transcriptions(session, org.id, q.get("roomName"), q.get("sortBy"),
                                                     q.get("cursor"), parse_limit(q.get("limit")))
    return TranscriptionList(results=[service.to_out(r) for r in rows], cursor=cursor)


@router.post("/bulk-delete", status_code=204)
async def bulk_delete(body: BulkDeleteRequest, request: Request, session: SessionDep, org: OrganizationDep) -> Response:
    """Delete the listed transcriptions (unknown, foreign or deleted ids are ignored)."""
    await service.delete_transcriptions(session, org.id, body.transcriptionIds, request.state.clock.now())
    await session.commit()
    return Response(status_code=204)


@router.get("/{transcriptionId}", response_model=TranscriptionOut)
async def get_transcription(transcriptionId: str, session: SessionDep, org: OrganizationDep) -> TranscriptionOut:  # noqa: N803
    return service.to_out(await service.get_transcription(session, org.id, transcriptionId))


@router.delete("/{transcriptionId}", status_code=204)
async def delete_transcription(transcriptionId: str, request: Request, session: SessionDep,  # noqa: N803
                               org: OrganizationDep) -> Response:
    """Delete a transcription and its transcript (a job in progress stops). 204 whether or not it existed."""
    await service.delete_transcriptions(session, org.id, [transcriptionId], request.state.clock.now())
    await session.commit()
    return Response(status_code=204)


@router.get("/{transcriptionId}/access-link", response_model=AccessLinkOut,
            responses={409: error_response("The transcription is not ready yet (data.state says where it is).")})
async def access_link(transcriptionId: str, request: Request, session: SessionDep, org: OrganizationDep) -> AccessLinkOut:  # noqa: N803
    """A download link of the Markdown transcript valid ``validForSeconds``; 409 while it is not ready."""
    valid_for = recordings.parse_valid_for(request.query_params.get("validForSeconds"))
    url, expires = await service.access_link(session, org.id, transcriptionId, valid_for, request.state.clock.now(),
                                             request.state.settings)
    return AccessLinkOut(accessLink=url, expires=expires)


@public_router.api_route(service.FILE_ROUTE + "/{transcriptionId}/{filename}", methods=["GET", "HEAD"])
async def download(transcriptionId: str, filename: str, request: Request, session: SessionDep) -> Response:  # noqa: N803
    """The transcript (``text/markdown``) for the holder of an unexpired access link token; 403 for a missing,
    wrong or expired token, 404 when it is gone."""
    try:
        recordings.verify_token(request.state.settings.signing_key, request.query_params.get("token") or "",
                                transcriptionId, service.TOKEN_USE, request.state.clock.now())
    except recordings.InvalidToken:
        raise Forbidden() from None
    t = await service.downloadable(session, transcriptionId, filename)
    return Response(t.markdown or "", media_type="text/markdown; charset=utf-8",
                    headers={"Cache-Control": "private, no-store",
                             "Content-Disposition": f'attachment; filename="{t.filename}"'})
