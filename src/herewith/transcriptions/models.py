"""The table of transcriptions (CONTRACT.md, "Recordings, transcriptions, summaries").

A ``RECORDING_TRANSCRIPTION`` is made from a recording's per-participant audio tracks by the transcription
job (:mod:`herewith.jobs.transcriptions`): ``in_progress`` -> ``ready`` | ``failed``. ``node_id`` names the
process working on it (null while queued); a claim by a process that died lapses with it (the nodes table,
:mod:`herewith.sessions.nodes`) and the job is taken again, so a ``kill -9`` never leaves it stuck.
A ``LIVE_TRANSCRIPTION`` holds the captions of a room session and is stored ``ready`` at once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from herewith.db.base import Base, UTCDateTime

SeqType = BigInteger().with_variant(Integer, "sqlite")

IN_PROGRESS, READY, FAILED = "in_progress", "ready", "failed"
STATES = (IN_PROGRESS, READY, FAILED)
RECORDING_TRANSCRIPTION, LIVE_TRANSCRIPTION = "RECORDING_TRANSCRIPTION", "LIVE_TRANSCRIPTION"
TYPES = (RECORDING_TRANSCRIPTION, LIVE_TRANSCRIPTION)


class Transcription(Base):
    """One transcript of a room session.

    ``started_at``/``ended_at``: the span transcribed (the recording's, or the live session's), UTC;
    ``duration_ms`` its length; ``language``: ISO 639-1 (detected or the meeting's
    ``liveTranscription.language``); ``markdown``: the transcript file itself (one line per utterance, see
    :mod:`herewith.transcriptions.transcript`), ``filename`` its download name; ``attempts``: job runs so far;
    ``error``: why it failed; ``finished_at``: when it became ready or failed.
    """

    __tablename__ = "transcriptions"
    __table_args__ = (Index("ix_transcriptions_org_live", "organization_id", "deleted_at"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    organization_id: Mapped[str] = mapped_column(String(36))
    meeting_id: Mapped[str] = mapped_column(String(36))
    room_name: Mapped[str] = mapped_column(String(100), index=True)
    room_session_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    recording_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    type: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    node_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    filename: Mapped[str | None] = mapped_column(String(200), nullable=True)
    markdown: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
