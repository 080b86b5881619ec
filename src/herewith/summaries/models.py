"""The table of summaries (CONTRACT.md, "Recordings, transcriptions, summaries").

A summary of a ready transcription is made by the summary job (:mod:`herewith.jobs.summaries`):
``in_progress`` -> ``completed`` | ``failed``, claimed like transcriptions (``node_id``; a dead process's
claim lapses).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from herewith.db.base import Base, UTCDateTime

SeqType = BigInteger().with_variant(Integer, "sqlite")

IN_PROGRESS, COMPLETED, FAILED = "in_progress", "completed", "failed"


class Summary(Base):
    """One summary of a transcription with one template.

    ``template``: one of :data:`herewith.summaries.templates.TEMPLATES`; ``backend``: ``extractive`` (built
    in) | ``openai`` (an OpenAI-compatible chat-completions endpoint); ``summary``: the contract's
    ``summary`` object once completed; ``started_at``/``ended_at``: the transcription's span.
    """

    __tablename__ = "summaries"
    __table_args__ = (Index("ix_summaries_org_live", "organization_id", "deleted_at"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    organization_id: Mapped[str] = mapped_column(String(36))
    transcription_id: Mapped[str] = mapped_column(String(36))
    meeting_id: Mapped[str] = mapped_column(String(36))
    room_name: Mapped[str] = mapped_column(String(100))
    room_session_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    template: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(16), index=True)
    backend: Mapped[str] = mapped_column(String(16))
    node_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
