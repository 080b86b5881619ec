"""Response models of the insights calls, field for field as ``whereby-openapi.json`` names them.

The spec's ``/insights/room-sessions`` item requires ``createdAt``/``endAt`` but describes
``startedAt``/``endedAt``; both pairs are returned (the same instants). Ratings are not collected:
``rating``, ``totalRatings``, ``tags`` and ``comment`` are null.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class _UsageTotals(BaseModel):
    """The totals a room and a room session share (CONTRACT.md "Insights")."""

    totalParticipantMinutes: int
    totalRecorderMinutes: int
    totalStreamerMinutes: int
    totalUniqueParticipants: int
    totalUniqueRecorders: int
    totalUniqueStreamers: int
    rating: float | None = None
    totalRatings: float | None = None


class RoomInsight(_UsageTotals):
    roomName: str
    createdAt: str
    endAt: str
    firstSessionStartedAt: str | None
    lastSessionStartedAt: str | None
    totalSessions: int


class RoomInsightList(BaseModel):
    cursor: str | None
    results: list[RoomInsight]


class RoomSessionInsight(_UsageTotals):
    roomSessionId: str
    roomName: str
    createdAt: str
    endAt: str | None
    startedAt: str
    endedAt: str | None


class RoomSessionInsightList(BaseModel):
    cursor: str | None
    results: list[RoomSessionInsight]


class ParticipantInsight(BaseModel):
    roomSessionId: str
    participantId: str
    deviceId: str | None
    userId: str | None
    roleName: str
    displayName: str | None
    joinedAt: str
    leftAt: str | None
    externalId: str | None
    rating: float | None = None
    tags: list[str] | None = None
    comment: str | None = None


class ParticipantInsightList(BaseModel):
    cursor: str | None
    results: list[ParticipantInsight]


class ParticipantDetail(BaseModel):
    """One connection of a participant in a session, with its samples.

    ``samples``: ``{"packetLossSend": [...], "packetLossRecv": [...], "bitrateSend": [...], "bitrateRecv": [...]}``,
    each a list of ``{"timestamp": <UTC ISO>, "value": <number>}`` (loss in percent, bitrates in bits/s).
    ``events``: ``[{"type": "joined"|"left", "timestamp": ...}]``.
    """

    displayName: str | None
    userRole: str
    userAgent: str | None
    timeStamp: str
    sampleRateMs: float
    samples: dict[str, list[dict[str, Any]]]
    events: list[dict[str, Any]]
