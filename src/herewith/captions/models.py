"""The final captions of live room sessions, as they come: what a crashed server leaves to be stored.

A ``caption_lines`` row is one final caption of a room session still running on node ``node_id`` (the
process that relays that room, herewith.sessions.nodes). The node deletes its session's rows when it stores
them as a ``LIVE_TRANSCRIPTION`` at the session's end; rows left by a node that stopped beating are stored the
same way by another node (:func:`herewith.captions.service.store_orphaned_captions`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from herewith.db.base import Base, UTCDateTime

SeqType = BigInteger().with_variant(Integer, "sqlite")


class CaptionLineRow(Base):
    """One final caption (``at``: when the server relayed it, UTC) of the room session of ``room_name`` whose
    captions began at ``session_started_at``, kept by node ``node_id`` until the session's transcript is stored."""

    __tablename__ = "caption_lines"
    __table_args__ = (Index("ix_caption_lines_node_room", "node_id", "room_name"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    node_id: Mapped[str] = mapped_column(String(36))
    meeting_id: Mapped[str] = mapped_column(String(36))
    room_name: Mapped[str] = mapped_column(String(100))
    session_started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    participant_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    text: Mapped[str] = mapped_column(Text)
