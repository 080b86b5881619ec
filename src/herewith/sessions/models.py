"""Tables of room sessions, their participants and the participants' WebRTC statistics samples.

Source: CONTRACT.md "Insights" (a room session starts when a second participant is in the room and ends when
fewer than two remain, after a grace period) and the insights schemas of ``whereby-openapi.json``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from herewith.db.base import Base, UTCDateTime

SeqType = BigInteger().with_variant(Integer, "sqlite")


class RoomSession(Base):
    """One room session.

    ``started_at``: when the second participant came in. ``below_two_since``: when the count last fell
    below two (the grace period runs from there; cleared when a second participant is back).
    ``ended_at``: set when the grace period passed; it is ``below_two_since`` (the last moment two people
    were in), or the deactivation time when the room expired mid-session.
    """

    __tablename__ = "room_sessions"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    organization_id: Mapped[str] = mapped_column(String(36), index=True)
    meeting_id: Mapped[str] = mapped_column(String(36), index=True)
    room_name: Mapped[str] = mapped_column(String(100), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    below_two_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RoomParticipant(Base):
    """One participant connection in a room, attached to the room session it was part of.

    ``participant_id`` is the signaling layer's id of the connection. ``room_session_id`` is null while fewer
    than two are in the room; when a session starts (or goes on), every present row is attached to it. When a
    session ends while someone stays, their row is closed at the session's end and a fresh unattached row
    continues from there, so every row belongs to at most one session. ``joined_at``/``left_at`` are real
    times (aware UTC); ``left_at`` is null while connected.
    """

    __tablename__ = "room_participants"
    __table_args__ = (Index("ix_room_participants_meeting_open", "meeting_id", "left_at"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    organization_id: Mapped[str] = mapped_column(String(36), index=True)
    meeting_id: Mapped[str] = mapped_column(String(36))
    room_name: Mapped[str] = mapped_column(String(100))
    room_session_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    participant_id: Mapped[str] = mapped_column(String(64), index=True)
    role_name: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    metadata_: Mapped[str | None] = mapped_column("metadata", Text, nullable=True)
    user_agent: Mapped[str | None] = mapped_column(Text, nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The server process (:class:`Node`) holding the connection: when it dies, its open rows are closed.
    node_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)


class Node(Base):
    """One server process that holds room connections (one row per process start).

    ``last_seen_at`` is renewed every ``node_heartbeat_seconds``; ``stopped_at`` is set on a clean shutdown.
    A node whose heartbeat is older than ``node_dead_after_seconds`` died: the participants it held left at
    its ``last_seen_at`` (the last moment it was known to be alive), and every node closes them
    (:func:`herewith.sessions.nodes.close_dead_nodes`).
    """

    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class StatsSample(Base):
    """One WebRTC statistics sample sent by the room page for a participant connection.

    Loss in percent (0..100), bitrates in bits per second, ``sample_rate_ms`` the page's sampling interval.
    """

    __tablename__ = "room_stats_samples"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    participant_seq: Mapped[int] = mapped_column(
        ForeignKey("room_participants.seq", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    sample_rate_ms: Mapped[int] = mapped_column(Integer)
    packet_loss_send: Mapped[float | None] = mapped_column(Float, nullable=True)
    packet_loss_recv: Mapped[float | None] = mapped_column(Float, nullable=True)
    bitrate_send: Mapped[float | None] = mapped_column(Float, nullable=True)
    bitrate_recv: Mapped[float | None] = mapped_column(Float, nullable=True)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
