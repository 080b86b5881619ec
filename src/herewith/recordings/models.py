"""Tables of recordings and their per-participant audio tracks (CONTRACT.md, "Recordings").

A recording moves ``starting`` (the row exists, the recorder is being launched) -> ``recording`` (its first
media chunk arrived) -> ``processing`` (stopped; waiting for or in finalization) -> ``ready`` (the file is in
storage) or ``failed``. ``node_id`` names the process that owns the recording in its current state: the one
ingesting it (``starting``/``recording``), or finalizing it (``processing``; null while no node has claimed
it). When that node dies (:mod:`herewith.sessions.nodes`), another one finalizes what is on disk.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from herewith.db.base import Base, UTCDateTime

SeqType = BigInteger().with_variant(Integer, "sqlite")

STARTING, RECORDING, PROCESSING, READY, FAILED = "starting", "recording", "processing", "ready", "failed"
STATES = (STARTING, RECORDING, PROCESSING, READY, FAILED)
LIVE_STATES = (STARTING, RECORDING)


class Recording(Base):
    """One cloud recording of a room.

    ``trigger``: ``manual`` (a host pressed Record) | ``prompt`` | ``automatic`` | ``automatic-2nd-participant``.
    ``file_format``: ``mp4`` | ``mkv``; ``storage_type``: ``whereby`` (the data directory) | ``s3`` (the
    meeting's ``recording.destination``; its credentials stay on the meeting row and are read when needed).
    ``started_at``: the first media chunk (the row's creation until then); ``ended_at``: the stop.
    ``duration_ms`` and ``size_bytes`` of the final file, ``filename`` its download name, ``storage_key`` where it
    is in its storage. ``finalize_attempts`` counts finalization runs; ``purged_at`` is set once a deleted
    recording's files are gone.
    """

    __tablename__ = "recordings"
    __table_args__ = (Index("ix_recordings_org_live", "organization_id", "deleted_at"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    organization_id: Mapped[str] = mapped_column(String(36))
    meeting_id: Mapped[str] = mapped_column(String(36), index=True)
    room_name: Mapped[str] = mapped_column(String(100), index=True)
    room_session_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    trigger: Mapped[str] = mapped_column(String(32))
    requested_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    file_format: Mapped[str] = mapped_column(String(8))
    storage_type: Mapped[str] = mapped_column(String(16))
    node_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    stop_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    filename: Mapped[str | None] = mapped_column(String(200), nullable=True)
    storage_key: Mapped[str | None] = mapped_column(String(500), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    finalize_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RecordingTrack(Base):
    """One ingested stream of a recording: the ``composite`` (video and mixed audio) or one participant's
    audio (``kind`` ``audio``; ``stream`` is its participantId), kept so a transcript can name who spoke.

    ``bytes_received`` counts what was appended to its WebM on disk; ``storage_key``/``size_bytes``/``duration_ms``
    describe the finished file (audio tracks only; the composite becomes the recording's file).
    """

    __tablename__ = "recording_tracks"
    __table_args__ = (Index("ix_recording_tracks_recording_stream", "recording_id", "stream", unique=True),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    stream: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    participant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    display_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    mime: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    bytes_received: Mapped[int] = mapped_column(BigInteger, default=0)
    storage_key: Mapped[str | None] = mapped_column(String(500), nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
