"""Final captions of running room sessions (herewith.captions.models): kept in the database as they come, so
that a server killed mid-session leaves them to be stored as the session's ``LIVE_TRANSCRIPTION``.

Revision ID: 0008_caption_lines
Revises: 0007_room_options
"""

import sqlalchemy as sa
from alembic import op

from herewith.db.base import UTCDateTime

revision = "0008_caption_lines"
down_revision = "0007_room_options"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "caption_lines",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("node_id", sa.String(36), nullable=False),
        sa.Column("meeting_id", sa.String(36), nullable=False),
        sa.Column("room_name", sa.String(100), nullable=False),
        sa.Column("session_started_at", UTCDateTime(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("participant_id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_index("ix_caption_lines_node_room", "caption_lines", ["node_id", "room_name"])


def downgrade() -> None:
    op.drop_index("ix_caption_lines_node_room", table_name="caption_lines")
    op.drop_table("caption_lines")
