"""Transcriptions and summaries (CONTRACT.md, "Recordings, transcriptions, summaries").

Revision ID: 0006_transcriptions
Revises: 0005_recordings
"""

import sqlalchemy as sa
from alembic import op

from herewith.db.base import UTCDateTime

revision = "0006_transcriptions"
down_revision = "0005_recordings"
branch_labels = None
depends_on = None

SeqType = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "transcriptions",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("meeting_id", sa.String(36), nullable=False),
        sa.Column("room_name", sa.String(100), nullable=False),
        sa.Column("room_session_id", sa.String(36), nullable=True),
        sa.Column("recording_id", sa.String(36), nullable=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("node_id", sa.String(36), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("filename", sa.String(200), nullable=True),
        sa.Column("markdown", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("id", name="uq_transcriptions_id"),
    )
    op.create_index("ix_transcriptions_org_live", "transcriptions", ["organization_id", "deleted_at"])
    op.create_index("ix_transcriptions_state", "transcriptions", ["state"])
    op.create_index("ix_transcriptions_room_name", "transcriptions", ["room_name"])
    op.create_index("ix_transcriptions_recording_id", "transcriptions", ["recording_id"])
    op.create_table(
        "summaries",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("transcription_id", sa.String(36), nullable=False),
        sa.Column("meeting_id", sa.String(36), nullable=False),
        sa.Column("room_name", sa.String(100), nullable=False),
        sa.Column("room_session_id", sa.String(36), nullable=True),
        sa.Column("template", sa.String(40), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("node_id", sa.String(36), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("modified_at", UTCDateTime(), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("id", name="uq_summaries_id"),
    )
    op.create_index("ix_summaries_org_live", "summaries", ["organization_id", "deleted_at"])
    op.create_index("ix_summaries_state", "summaries", ["state"])


def downgrade() -> None:
    op.drop_index("ix_summaries_state", "summaries")
    op.drop_index("ix_summaries_org_live", "summaries")
    op.drop_table("summaries")
    for name in ("ix_transcriptions_recording_id", "ix_transcriptions_room_name", "ix_transcriptions_state",
                 "ix_transcriptions_org_live"):
        op.drop_index(name, "transcriptions")
    op.drop_table("transcriptions")
