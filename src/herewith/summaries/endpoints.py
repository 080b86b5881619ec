"""Summaries over HTTP: thin endpoints (auth, parse, one service call).

``router`` (under ``/v1``, with the Bearer dependency; CONTRACT.md "Recordings, transcriptions, summaries"):

| call | success |
| --- | --- |
| POST /summaries ``{"transcriptionId", "template"?}`` | 201 ``{summaryId}`` (404 unknown transcription, 409 not ready, 503 no backend here) |
| GET /summaries ``sortBy``, ``cursor``, ``limit`` | 200 ``{results: Summary[], cursor}`` |
| GET /summaries/{summaryId} | 200 Summary |
| DELETE /summaries/{summaryId} | 204, idempotent |
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from herewith.auth.dependencies import OrganizationDep, SessionDep
from herewith.errors import error_response
from herewith.kit.pagination import parse_limit
from herewith.summaries import service
from herewith.summaries.schemas import SummaryCreate, SummaryCreated, SummaryList, SummaryOut

router = APIRouter(prefix="/summaries", tags=["summaries"], strict_content_type=False)


@router.post("", status_code=201, response_model=SummaryCreated, responses={
    404: error_response("No transcription of this organization has that id."),
    409: error_response("The transcription is not ready yet (data.state says where it is)."),
    503: error_response("The summary backend cannot run on this server (data.reason says what is missing)."),
})
async def create_summary(body: SummaryCreate, request: Request, session: SessionDep,
                         org: OrganizationDep) -> SummaryCreated:
    """Summarize a ready transcription with a template: 201 at once; ``state`` in_progress -> completed | failed."""
    settings = request.state.settings
    service.check_backend(settings)
    row = await service.create_summary(session, org.id, body.transcriptionId, body.template,
                                       request.state.clock.now(), settings)
    await session.commit()
    request.state.summary_wakeup.set()
    return SummaryCreated(summaryId=row.id)


@router.get("", response_model=SummaryList)
async def list_summaries(request: Request, session: SessionDep, org: OrganizationDep) -> SummaryList:
    q = request.query_params
    rows, cursor = await service.list_summaries(session, org.id, q.get("sortBy"), q.get("cursor"),
                                                parse_limit(q.get("limit")))
    return SummaryList(results=[service.to_out(r) for r in rows], cursor=cursor)


@router.get("/{summaryId}", response_model=SummaryOut)
async def get_summary(summaryId: str, session: SessionDep, org: OrganizationDep) -> SummaryOut:  # noqa: N803
    return service.to_out(await service.get_summary(session, org.id, summaryId))


@router.delete("/{summaryId}", status_code=204)
async def delete_summary(summaryId: str, request: Request, session: SessionDep, org: OrganizationDep) -> Response:  # noqa: N803
    await service.delete_summary(session, org.id, summaryId, request.state.clock.now())
    await session.commit()
    return Response(status_code=204)
