"""Server processes (nodes) and the node holding each participant connection, so that the connections of a
process that died are closed with the time it was last seen.

Revision ID: 0004_nodes
Revises: 0003_sessions_webhooks
"""

import sqlalchemy as sa
from alembic import op

from herewith.db.base import UTCDateTime

revision = "0004_nodes"
down_revision = "0003_sessions_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("stopped_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_nodes_last_seen_at", "nodes", ["last_seen_at"])
    with op.batch_alter_table("room_participants") as batch:
        batch.add_column(sa.Column("node_id", sa.String(36), nullable=True))
        batch.create_index("ix_room_participants_node_id", ["node_id"])


def downgrade() -> None:
    with op.batch_alter_table("room_participants") as batch:
        batch.drop_index("ix_room_participants_node_id")
        batch.drop_column("node_id")
    op.drop_index("ix_nodes_last_seen_at", "nodes")
    op.drop_table("nodes")
