"""Rules of summaries (CONTRACT.md "Recordings, transcriptions, summaries"). No HTTP here; services take
the session first and never commit.

- ``POST /v1/summaries {"transcriptionId", "template"?}``: the organization's ``ready`` transcription (404
  unknown or foreign, 409 not ready) gets an ``in_progress`` summary row; the summary job
  (:mod:`herewith.jobs.summaries`) runs :func:`run_summary`: ``completed`` | ``failed``.
- Backends (setting ``summary_backend``): ``extractive`` (built in, offline; sumy + pysbd from the speech
  extra, 503 without them) or ``openai`` (an OpenAI-compatible chat-completions endpoint).
- list (``sortBy`` roomName|startDate|createdAt, keyset cursors), get, idempotent delete.
"""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.config import Settings
from herewith.db.transactions import in_transaction
from herewith.errors import HerewithError, NotFound
from herewith.kit.pagination import decode_sorted_cursor, parse_sort_by, sorted_page
from herewith.kit.time import format_utc
from herewith.summaries import repository
from herewith.summaries.chat import ChatBackendError, summarize_with_chat
from herewith.summaries.models import COMPLETED, FAILED, IN_PROGRESS, Summary
from herewith.summaries.schemas import SORT_FIELDS, SummaryOut
from herewith.summaries.templates import DEFAULT_TEMPLATE
from herewith.transcriptions.models import READY as TRANSCRIPTION_READY
from herewith.transcriptions.transcript import parse_markdown

log = structlog.get_logger(__name__)

DEFAULT_SORT = ("createdAt", True)


class TranscriptionNotReady(HerewithError):
    """409: the transcription has no transcript yet (``data.state`` says where it is)."""

    status = 409
    message = "The transcription is not ready yet"


class SummariesNotAvailable(HerewithError):
    """503: the built-in summary backend's libraries (sumy, pysbd: the speech extra) are not installed."""

    status = 503
    message = "Summaries are not available on this server"


def check_backend(settings: Settings) -> None:
    """Raise :class:`SummariesNotAvailable` unless the configured backend can run here."""
    if settings.summary_backend == "openai":
        if not settings.summary_openai_url:
            raise SummariesNotAvailable(data={"reason": "summary_backend is openai but summary_openai_url is not set"})
        return
    missing = [name for name in ("sumy", "pysbd") if importlib.util.find_spec(name) is None]
    if missing:
        raise SummariesNotAvailable(data={"reason": f"{', '.join(missing)} not installed: "
                                                    "pip install -e '.[speech]' (README, \"Speech\")"})


async def create_summary(session: AsyncSession, organization_id: str, transcription_id: str, template: str | None,
                         now: datetime, settings: Settings) -> Summary:
    """An ``in_progress`` summary of the organization's ready transcription (flushed; the caller commits)."""
    t = await repository.transcription_for_organization(session, organization_id, transcription_id)
    if t is None:
        raise NotFound()
    if t.state != TRANSCRIPTION_READY:
        raise TranscriptionNotReady(data={"state": t.state})
    summary = Summary(
        id=str(uuid.uuid4()), organization_id=organization_id, transcription_id=t.id, meeting_id=t.meeting_id,
        room_name=t.room_name, room_session_id=t.room_session_id, template=template or DEFAULT_TEMPLATE,
        state=IN_PROGRESS, backend=settings.summary_backend, attempts=0, started_at=t.started_at,
        ended_at=t.ended_at, created_at=now, modified_at=now,
    )
    session.add(summary)
    await session.flush()
    return summary


async def run_summary(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, summary_id: str,
                      node_id: str, now: Callable[[], datetime]) -> str:
    """Make one claimed summary; returns its state after: ``completed``, ``failed``, or ``in_progress``
    (released for another attempt after a backend error, up to ``transcription_attempts`` runs). The
    extractive backend runs in a thread, never on the event loop."""

    async def load(s: AsyncSession):  # noqa: ANN202
        row = await repository.get(s, summary_id)
        return row, (await repository.transcription(s, row.transcription_id)) if row is not None else None

    row, t = await in_transaction(sessionmaker, load)
    if row is None or row.state != IN_PROGRESS or row.deleted_at is not None or row.node_id != node_id:
        return row.state if row is not None else FAILED
    result: dict[str, Any] | None = None
    error: str | None = None
    retry = False
    if row.attempts > settings.transcription_attempts:
        error = f"gave up after {settings.transcription_attempts} attempts: {row.error or 'unknown'}"
    elif t is None or t.deleted_at is not None or t.markdown is None:
        error = "the transcription was deleted"
    elif row.backend == "openai":
        try:
            result = await summarize_with_chat(settings, t.markdown, row.template)
        except ChatBackendError as exc:
            error, retry = str(exc), row.attempts < settings.transcription_attempts
    else:
        from herewith.summaries.extractive import summarize

        result = await asyncio.to_thread(summarize, parse_markdown(t.markdown), row.template)

    async def save(s: AsyncSession) -> str:
        current = await repository.get(s, summary_id, for_update=True)
        if current is None or current.state != IN_PROGRESS or current.node_id != node_id:
            return current.state if current is not None else FAILED
        current.node_id = None
        current.modified_at = now()
        if result is not None:
            current.state, current.summary, current.error = COMPLETED, result, None
        elif retry:
            current.error = error
        else:
            current.state, current.error = FAILED, error
        return current.state

    state = await in_transaction(sessionmaker, save)
    log.info("summary_done", summary_id=summary_id, state=state, template=row.template, backend=row.backend,
             error=error)
    return state


async def release_summary(sessionmaker: async_sessionmaker[AsyncSession], summary_id: str, node_id: str) -> str:
    """Give back this node's claim on a summary after an unexpected error (another attempt follows)."""

    async def go(s: AsyncSession) -> str:
        row = await repository.get(s, summary_id, for_update=True)
        if row is not None and row.state == IN_PROGRESS and row.node_id == node_id:
            row.node_id = None
        return row.state if row is not None else FAILED

    return await in_transaction(sessionmaker, go)


# ---------------------------------------------------------------------------------------------------- API
def parse_sort(raw: str | None) -> tuple[str, bool]:
    """``sortBy`` -> (field, descending); default ``DEFAULT_SORT``; 400 naming ``sortBy`` otherwise."""
    return parse_sort_by(raw, SORT_FIELDS, DEFAULT_SORT)


def _sort_value(row: Summary, field: str) -> Any:
    if field == "roomName":
        return row.room_name
    return (row.started_at if field == "startDate" else row.created_at).isoformat()


async def list_summaries(session: AsyncSession, organization_id: str, sort_by: str | None, cursor: str | None,
                         limit: int) -> tuple[list[Summary], str | None]:
    """One page of the organization's summaries (not deleted), newest first by default, and the next cursor."""
    field, descending = parse_sort(sort_by)
    after = decode_sorted_cursor(cursor, field, descending, frozenset({"startDate", "createdAt"}),
                                 frozenset({"roomName"})) if cursor else None
    rows = list(await repository.list_page(session, organization_id, field, descending, after, limit + 1))
    return sorted_page(rows, limit, field, descending, _sort_value)


async def get_summary(session: AsyncSession, organization_id: str, summary_id: str) -> Summary:
    """The organization's summary; :class:`NotFound` for unknown, deleted or another organization's ids."""
    row = await repository.get_for_organization(session, organization_id, summary_id)
    if row is None:
        raise NotFound()
    return row


async def delete_summary(session: AsyncSession, organization_id: str, summary_id: str, now: datetime) -> None:
    """Mark the summary deleted and drop its text; idempotent (unknown ids are ignored). Never commits."""
    row = await repository.get_for_organization(session, organization_id, summary_id)
    if row is not None:
        row.deleted_at, row.summary, row.modified_at = now, None, now
        await session.flush()


def to_out(row: Summary) -> SummaryOut:
    """The contract's Summary (see :class:`~herewith.summaries.schemas.SummaryOut`)."""
    return SummaryOut(
        summaryId=row.id, transcriptionId=row.transcription_id, summary=row.summary, roomSessionId=row.room_session_id,
        roomName=row.room_name, startDate=format_utc(row.started_at),
        endDate=format_utc(row.ended_at) if row.ended_at else None, state=row.state,
        createdAt=format_utc(row.created_at), modifiedAt=format_utc(row.modified_at), template=row.template,
    )
