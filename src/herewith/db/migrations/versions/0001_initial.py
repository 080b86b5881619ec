"""Organizations, API keys, meetings.

Revision ID: 0001_initial
Revises:
"""

import sqlalchemy as sa
from alembic import op

from herewith.db.base import UTCDateTime

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

SeqType = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("plan", sa.String(20), nullable=False, server_default="grow"),
        sa.Column("rate_limit_points", sa.Integer, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organization_id", sa.String(36), sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_api_keys_organization_id", "api_keys", ["organization_id"])
    op.create_table(
        "meetings",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("organization_id", sa.String(36), sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("room_name", sa.String(100), nullable=False, unique=True),
        sa.Column("room_mode", sa.String(10), nullable=False),
        sa.Column("is_locked", sa.Boolean, nullable=False),
        sa.Column("template_type", sa.String(20), nullable=True),
        sa.Column("start_date", UTCDateTime(), nullable=False),
        sa.Column("end_date", UTCDateTime(), nullable=False),
        sa.Column("recording", sa.JSON, nullable=True),
        sa.Column("live_transcription", sa.JSON, nullable=True),
        sa.Column("streaming", sa.JSON, nullable=True),
        sa.Column("deactivated_at", UTCDateTime(), nullable=True),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_meetings_organization_id", "meetings", ["organization_id"])
    op.create_index("ix_meetings_end_date", "meetings", ["end_date"])


def downgrade() -> None:
    op.drop_table("meetings")
    op.drop_table("api_keys")
    op.drop_table("organizations")
