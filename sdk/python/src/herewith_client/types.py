"""Typed models of the API's answers, field for field as the API names them (the Whereby REST API v1 terms).

Dates come back as timezone-aware :class:`datetime.datetime` in UTC. Every model keeps fields it does not
know (``extra="allow"``), so a newer server's additions are not lost: ``model.model_extra``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Meeting(_Model):
    """A meeting (``POST/GET /v1/meetings``): its room ``roomName`` ("/prefix-uuid"), ``roomUrl``, and
    ``hostRoomUrl`` / ``viewerRoomUrl`` only when asked for with ``fields``. ``startDate`` is the creation
    time; the room is deactivated one hour after ``endDate``."""

    meetingId: str
    roomName: str
    roomUrl: str
    startDate: datetime
    endDate: datetime
    hostRoomUrl: str | None = None
    viewerRoomUrl: str | None = None


class Recording(_Model):
    """A cloud recording (``/v1/recordings``). ``state``: starting | recording | processing | ready | failed;
    ``sizeInMegaBytes``: 10^6 bytes (0 until ready); ``duration``: seconds (None until ready)."""

    recordingId: str
    roomSessionId: str | None = None
    roomName: str
    filename: str | None = None
    startDate: datetime
    endDate: datetime | None = None
    sizeInMegaBytes: float = 0
    duration: float | None = None
    state: str | None = None
    meetingId: str | None = None
    storageType: str | None = None
    fileFormat: str | None = None
    trigger: str | None = None


class AccessLink(_Model):
    """A download link of a recording: ``accessLink`` works until ``expires`` (epoch milliseconds)."""

    accessLink: str
    expires: int

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires / 1000, tz=timezone.utc)


class RoomInsight(_Model):
    """Usage of one room (``GET /v1/insights/rooms``); minutes are participant-minutes, rounded up per
    connection."""

    roomName: str
    createdAt: datetime
    endAt: datetime | None = None
    firstSessionStartedAt: datetime | None = None
    lastSessionStartedAt: datetime | None = None
    totalParticipantMinutes: int = 0
    totalRecorderMinutes: int = 0
    totalStreamerMinutes: int = 0
    totalUniqueParticipants: int = 0
    totalUniqueRecorders: int = 0
    totalUniqueStreamers: int = 0
    totalSessions: int = 0
    rating: float | None = None
    totalRatings: float | None = None


class RoomSessionInsight(_Model):
    """One room session (two or more people together), ``GET /v1/insights/room-sessions``."""

    roomSessionId: str
    roomName: str
    startedAt: datetime
    endedAt: datetime | None = None
    createdAt: datetime | None = None
    endAt: datetime | None = None
    totalParticipantMinutes: int = 0
    totalRecorderMinutes: int = 0
    totalStreamerMinutes: int = 0
    totalUniqueParticipants: int = 0
    totalUniqueRecorders: int = 0
    totalUniqueStreamers: int = 0
    rating: float | None = None
    totalRatings: float | None = None


class ParticipantInsight(_Model):
    """One participant of a room session, ``GET /v1/insights/participants``; ``roleName`` as in webhooks
    (host, visitor, granted_visitor, viewer, recorder, ...)."""

    roomSessionId: str
    participantId: str
    deviceId: str | None = None
    userId: str | None = None
    roleName: str
    displayName: str | None = None
    joinedAt: datetime
    leftAt: datetime | None = None
    externalId: str | None = None
    rating: float | None = None
    tags: list[str] | None = None
    comment: str | None = None


class ParticipantDetail(_Model):
    """One connection of a participant, with its samples (``GET /v1/insights/participant``).

    ``samples``: ``packetLossSend``, ``packetLossRecv`` (percent), ``bitrateSend``, ``bitrateRecv``
    (bits/s), each a list of ``{"timestamp", "value"}``; ``sampleRateMs``: the sampling period.
    """

    displayName: str | None = None
    userRole: str
    userAgent: str | None = None
    timeStamp: datetime
    sampleRateMs: float
    samples: dict[str, list[dict[str, Any]]]
    events: list[dict[str, Any]]


class Webhook(_Model):
    """A webhook endpoint of the organization (Herewith's ``/v1/webhooks``; the vendor uses a dashboard)."""

    webhookId: str
    url: str
    events: list[str]
    description: str = ""
    enabled: bool = True
    createdAt: datetime


class WebhookWithSecret(Webhook):
    """A created endpoint with its signing ``secret`` (``whsec_...``), returned this once."""

    secret: str


class WebhookSecret(_Model):
    """The new signing ``secret`` after a rotation."""

    webhookId: str
    secret: str


class Delivery(_Model):
    """One delivery attempt of an event to an endpoint: ``statusCode`` (None without an answer),
    ``durationMs``, ``error`` (a category: ``timeout``, ``connection refused``, ``HTTP 500``...)."""

    deliveryId: str
    eventId: str
    type: str
    attempt: int
    createdAt: datetime
    durationMs: int
    statusCode: int | None = None
    succeeded: bool
    error: str | None = None


class Redelivery(_Model):
    """An event queued again for an endpoint (``state``: pending)."""

    eventId: str
    webhookId: str
    state: str


class WebhookEvent(_Model):
    """A webhook delivery's body: ``{"id", "apiVersion", "createdAt", "type", "data"}``.

    ``type``: ``room.client.joined``, ``room.client.left``, ``room.client.knocked``,
    ``room.client.knockCancelled``, ``room.session.started``, ``room.session.ended``, ``recording.finished``,
    ``transcription.started|finished|failed``; ``data`` always has ``meetingId``, ``roomName``,
    ``roomSessionId``; client events add ``participantId``, ``displayName``, ``metadata``, ``externalId``.
    """

    id: str
    apiVersion: str
    createdAt: datetime
    type: str
    data: dict[str, Any]


class Transcription(_Model):
    """A transcript (``/v1/transcriptions``): of a recording (``type`` RECORDING_TRANSCRIPTION, one speaker per
    participant's own audio track) or of live captions (LIVE_TRANSCRIPTION). ``state``: in_progress | ready |
    failed; ``filename``: the Markdown file's name (None until ready); ``durationInSeconds``: the span
    transcribed. Herewith adds ``recordingId``, ``meetingId`` and ``language`` (ISO 639-1)."""

    transcriptionId: str
    roomSessionId: str | None = None
    roomName: str
    startDate: datetime
    endDate: datetime | None = None
    state: str
    createdAt: datetime
    type: str
    filename: str | None = None
    durationInSeconds: float | None = None
    storageType: str | None = None
    recordingId: str | None = None
    meetingId: str | None = None
    language: str | None = None


class TranscriptionCreated(_Model):
    """The answer of ``POST /v1/transcriptions``: the new transcription's id (it starts ``in_progress``)."""

    transcriptionId: str


class Summary(_Model):
    """A summary of a transcription (``/v1/summaries``). ``state``: in_progress | completed | failed;
    ``summary``: None while in progress, then ``{"summary": <Markdown>, "sections": [...] | None, "draft",
    "notice", "backend", "template"}``; ``template``: SOAP, Extended SOAP, General Narrative, General
    Bulleted, Educational Lecture or Educational Tutoring."""

    summaryId: str
    transcriptionId: str
    summary: dict[str, Any] | None = None
    roomSessionId: str | None = None
    roomName: str
    startDate: datetime
    endDate: datetime | None = None
    state: str
    createdAt: datetime
    modifiedAt: datetime
    template: str

    @property
    def text(self) -> str | None:
        """The summary's Markdown, or None while it is not completed."""
        return (self.summary or {}).get("summary")


class SummaryCreated(_Model):
    """The answer of ``POST /v1/summaries``: the new summary's id (it starts ``in_progress``)."""

    summaryId: str
