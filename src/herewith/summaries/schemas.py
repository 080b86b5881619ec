"""Request and response models of the summaries calls, named as in the contract.

Source: CONTRACT.md "Recordings, transcriptions, summaries" and ``whereby-openapi.json`` (``Summary``,
``/summaries`` paths; its malformed 201 schema is read as ``{summaryId}``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

SORT_FIELDS = ("roomName", "startDate", "createdAt")

TemplateName = Literal["SOAP", "Extended SOAP", "General Narrative", "General Bulleted", "Educational Lecture",
                       "Educational Tutoring"]


class SummaryCreate(BaseModel):
    """Body of ``POST /v1/summaries``: ``transcriptionId`` and optionally ``template`` (default General Bulleted)."""

    model_config = ConfigDict(extra="ignore")

    transcriptionId: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    template: TemplateName | None = None


class SummaryCreated(BaseModel):
    summaryId: str


class SummaryOut(BaseModel):
    """The contract's ``Summary``.

    ``summary``: null while in progress, then ``{"summary": Markdown, "sections": [{"title", "items": [{"text",
    "speaker", "at"}]}] (extractive) or null, "draft": true, "notice", "backend", "template"}``;
    ``startDate``/``endDate``: the transcription's span (UTC); ``state``: in_progress | completed | failed;
    ``createdAt``/``modifiedAt``: UTC with milliseconds.
    """

    summaryId: str
    transcriptionId: str
    summary: dict[str, Any] | None
    roomSessionId: str | None
    roomName: str
    startDate: str
    endDate: str | None
    state: str
    createdAt: str
    modifiedAt: str
    template: str


class SummaryList(BaseModel):
    results: list[SummaryOut]
    cursor: str | None
