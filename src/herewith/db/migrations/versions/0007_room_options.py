"""Room options of the second vendor's room API (CONTRACT.md, "Another vendor's room options").

Revision ID: 0007_room_options
Revises: 0006_transcriptions
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0007_room_options"
down_revision = "0006_transcriptions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
