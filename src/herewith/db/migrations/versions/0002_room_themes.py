"""Room themes (colour tokens, logo, room and knock-page backgrounds).

Revision ID: 0002_room_themes
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

from herewith.db.base import UTCDateTime

revision = "0002_room_themes"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "room_themes",
        sa.Column("meeting_id", sa.String(36), sa.ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tokens_preset", sa.String(10), nullable=False, server_default="default"),
        sa.Column("primary_color", sa.String(7), nullable=True),
        sa.Column("secondary_color", sa.String(7), nullable=True),
        sa.Column("focus_color", sa.String(7), nullable=True),
        sa.Column("logo_sha256", sa.String(64), nullable=True),
        sa.Column("logo_format", sa.String(4), nullable=True),
        sa.Column("room_background_sha256", sa.String(64), nullable=True),
        sa.Column("room_background_format", sa.String(4), nullable=True),
        sa.Column("room_background_palette", sa.String(16), nullable=False, server_default="default"),
        sa.Column("room_background_theme", sa.String(16), nullable=False, server_default="default"),
        sa.Column("knock_background_sha256", sa.String(64), nullable=True),
        sa.Column("knock_background_format", sa.String(4), nullable=True),
        sa.Column("knock_background_palette", sa.String(16), nullable=False, server_default="default"),
        sa.Column("knock_background_theme", sa.String(16), nullable=False, server_default="default"),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("room_themes")
