"""Request and response models of the transcriptions calls, named as in the contract.

Source: CONTRACT.md "Recordings, transcriptions, summaries" and ``whereby-openapi.json`` (``Transcription``,
``/transcriptions`` paths; its malformed 201 schema is read as ``{transcriptionId}``, as the contract says).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr

SORT_FIELDS = ("roomName", "startDate", "durationInSeconds")
MAX_BULK_IDS = 1000


class TranscriptionCreate(BaseModel):
    """Body of ``POST /v1/transcriptions``: the ``recordingId`` to transcribe."""

    model_config = ConfigDict(extra="ignore")

    recordingId: Annotated[StrictStr, Field(min_length=1, max_length=64)]


class TranscriptionCreated(BaseModel):
    transcriptionId: str


class TranscriptionOut(BaseModel):
    """The contract's ``Transcription``.

    ``startDate``/``endDate``: the span transcribed, UTC with milliseconds; ``state``: in_progress | ready |
    failed; ``createdAt``: when it was asked for; ``type``: RECORDING_TRANSCRIPTION | LIVE_TRANSCRIPTION;
    ``filename``: the Markdown file's name (null until ready); ``durationInSeconds``: length of the span;
    ``storageType``: WHEREBY_HOSTED (kept by this server). Herewith adds ``recordingId``, ``meetingId`` and
    ``language`` (ISO 639-1, null until known).
    """

    transcriptionId: str
    roomSessionId: str | None
    roomName: str
    startDate: str
    endDate: str | None
    state: str
    createdAt: str
    type: str
    filename: str | None
    durationInSeconds: float | None
    storageType: str
    recordingId: str | None
    meetingId: str
    language: str | None


class TranscriptionList(BaseModel):
    results: list[TranscriptionOut]
    cursor: str | None


class AccessLinkOut(BaseModel):
    """``accessLink``: a URL that downloads the Markdown file until ``expires`` (epoch milliseconds, UTC)."""

    accessLink: str
    expires: int


class BulkDeleteRequest(BaseModel):
    """Body of ``POST /v1/transcriptions/bulk-delete``: ``transcriptionIds``, at most 1000 ids."""

    model_config = ConfigDict(extra="ignore")

    transcriptionIds: list[Annotated[StrictStr, Field(max_length=64)]] = Field(max_length=MAX_BULK_IDS)
