"""Transcriptions and summaries (CONTRACT.md, "Transcriptions", "Summaries").

Revision ID: 0006_transcriptions
Revises: 0005_recordings
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0006_transcriptions"
down_revision = "0005_recordings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
