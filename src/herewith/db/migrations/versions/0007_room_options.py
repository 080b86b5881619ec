"""Room options of the second vendor's room API (CONTRACT.md, "Another vendor's room options").

- ``meetings.room_policy``: the vendor-neutral rules the server enforces in the room (herewith.rooms.policy:
  privacy, knocking, not-before/expiry, participant cap, eject timers, no-activity end, who may publish what,
  chat, screen share, pre-call defaults); null for rooms without such rules.
- ``meetings.api_options``: the options as the creating API gave them (answered back by that API).
- ``webhook_endpoints.meeting_id``: an endpoint that receives the events of one room only (the per-room
  webhook URLs); null for the organization's endpoints.

Revision ID: 0007_room_options
Revises: 0006_transcriptions
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_room_options"
down_revision = "0006_transcriptions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("meetings") as batch:
        batch.add_column(sa.Column("room_policy", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("api_options", sa.JSON(), nullable=True))
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("meeting_id", sa.String(36), nullable=True))
    op.create_index("ix_webhook_endpoints_meeting_id", "webhook_endpoints", ["meeting_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_endpoints_meeting_id", table_name="webhook_endpoints")
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("meeting_id")
    with op.batch_alter_table("meetings") as batch:
        batch.drop_column("api_options")
        batch.drop_column("room_policy")
