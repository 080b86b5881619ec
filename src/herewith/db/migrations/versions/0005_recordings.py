"""Recordings and their per-participant audio tracks (CONTRACT.md, "Recordings").

Revision ID: 0005_recordings
Revises: 0004_nodes
"""

import sqlalchemy as sa
from alembic import op

from herewith.db.base import UTCDateTime

revision = "0005_recordings"
down_revision = "0004_nodes"
branch_labels = None
depends_on = None

SeqType = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("meeting_id", sa.String(36), nullable=False),
        sa.Column("room_name", sa.String(100), nullable=False),
        sa.Column("room_session_id", sa.String(36), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=True),
        sa.Column("file_format", sa.String(8), nullable=False),
        sa.Column("storage_type", sa.String(16), nullable=False),
        sa.Column("node_id", sa.String(36), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("stop_reason", sa.String(32), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("filename", sa.String(200), nullable=True),
        sa.Column("storage_key", sa.String(500), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finalize_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.Column("purged_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("id", name="uq_recordings_id"),
    )
    op.create_index("ix_recordings_org_live", "recordings", ["organization_id", "deleted_at"])
    op.create_index("ix_recordings_meeting_id", "recordings", ["meeting_id"])
    op.create_index("ix_recordings_room_name", "recordings", ["room_name"])
    op.create_index("ix_recordings_state", "recordings", ["state"])
    op.create_index("ix_recordings_node_id", "recordings", ["node_id"])
    op.create_table(
        "recording_tracks",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("recording_id", sa.String(36),
                  sa.ForeignKey("recordings.id", ondelete="CASCADE", name="fk_recording_tracks_recording_id_recordings"),
                  nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("participant_id", sa.String(64), nullable=True),
        sa.Column("display_name", sa.String(200), nullable=True),
        sa.Column("mime", sa.String(100), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("bytes_received", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("storage_key", sa.String(500), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_recording_tracks_recording_stream", "recording_tracks", ["recording_id", "stream"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_recording_tracks_recording_stream", "recording_tracks")
    op.drop_table("recording_tracks")
    for name in ("ix_recordings_node_id", "ix_recordings_state", "ix_recordings_room_name", "ix_recordings_meeting_id",
                 "ix_recordings_org_live"):
        op.drop_index(name, "recordings")
    op.drop_table("recordings")
