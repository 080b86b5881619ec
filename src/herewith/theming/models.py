"""The ``room_themes`` table: one row per themed room (CONTRACT.md, "Room theming")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from herewith.db.base import Base, UTCDateTime


class RoomThemeRow(Base):
    """The theme of one room; a room without a row has Herewith's defaults.

    ``meeting_id``: the room's ``meetings.id``. Colours are ``#rrggbb`` (lower case) or NULL for the
    default of that token. For each image (``logo``, ``room_background``, ``knock_background``):
    ``<image>_sha256`` and ``<image>_format`` (``png`` | ``jpeg``) of an uploaded file stored under
    ``<data_dir>/themes/<meeting_id>/``, or NULL; the backgrounds have ``<image>_palette`` and
    ``<image>_theme`` for the built-in presets when no file is set.
    """

    __tablename__ = "room_themes"

    meeting_id: Mapped[str] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True)
    tokens_preset: Mapped[str] = mapped_column(String(10), default="default")
    primary_color: Mapped[str | None] = mapped_column(String(7), nullable=True)
    secondary_color: Mapped[str | None] = mapped_column(String(7), nullable=True)
    focus_color: Mapped[str | None] = mapped_column(String(7), nullable=True)
    logo_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    logo_format: Mapped[str | None] = mapped_column(String(4), nullable=True)
    room_background_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    room_background_format: Mapped[str | None] = mapped_column(String(4), nullable=True)
    room_background_palette: Mapped[str] = mapped_column(String(16), default="default")
    room_background_theme: Mapped[str] = mapped_column(String(16), default="default")
    knock_background_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    knock_background_format: Mapped[str | None] = mapped_column(String(4), nullable=True)
    knock_background_palette: Mapped[str] = mapped_column(String(16), default="default")
    knock_background_theme: Mapped[str] = mapped_column(String(16), default="default")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
