"""The meeting (one transient room) table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from herewith.db.base import Base, UTCDateTime

SeqType = BigInteger().with_variant(Integer, "sqlite")


class Meeting(Base):
    """A meeting and its room (CONTRACT.md, "Meetings").

    ``seq`` orders meetings for keyset pagination; ``id`` is the public ``meetingId``; ``room_name`` keeps
    the leading slash (``/prefix-uuid``). ``deleted_at`` set by DELETE or by the lifecycle sweeper;
    ``deactivated_at`` one hour after ``end_date``.
    """

    __tablename__ = "meetings"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    room_name: Mapped[str] = mapped_column(String(100), unique=True)
    room_mode: Mapped[str] = mapped_column(String(10), default="normal")
    is_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    template_type: Mapped[str | None] = mapped_column(String(20), nullable=True)
    start_date: Mapped[datetime] = mapped_column(UTCDateTime())
    end_date: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    recording: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    live_transcription: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    streaming: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Rules enforced in the room (herewith.rooms.policy.RoomPolicy.to_json) and the options as the creating
    # API gave them (the second vendor's room API answers them back); both null for plain meetings.
    room_policy: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    api_options: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
