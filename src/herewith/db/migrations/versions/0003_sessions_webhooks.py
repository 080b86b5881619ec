"""Room sessions, participants, stats samples; webhook endpoints, outbox events and delivery attempts.

Revision ID: 0003_sessions_webhooks
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

from herewith.db.base import UTCDateTime

revision = "0003_sessions_webhooks"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

SeqType = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "room_sessions",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("meeting_id", sa.String(36), nullable=False),
        sa.Column("room_name", sa.String(100), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("below_two_since", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_room_sessions_organization_id", "room_sessions", ["organization_id"])
    op.create_index("ix_room_sessions_meeting_id", "room_sessions", ["meeting_id"])
    op.create_index("ix_room_sessions_room_name", "room_sessions", ["room_name"])
    op.create_table(
        "room_participants",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("meeting_id", sa.String(36), nullable=False),
        sa.Column("room_name", sa.String(100), nullable=False),
        sa.Column("room_session_id", sa.String(36), nullable=True),
        sa.Column("participant_id", sa.String(64), nullable=False),
        sa.Column("role_name", sa.String(32), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=True),
        sa.Column("external_id", sa.String(64), nullable=True),
        sa.Column("metadata", sa.Text, nullable=True),
        sa.Column("user_agent", sa.Text, nullable=True),
        sa.Column("device_id", sa.String(100), nullable=True),
        sa.Column("joined_at", UTCDateTime(), nullable=False),
        sa.Column("left_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_room_participants_organization_id", "room_participants", ["organization_id"])
    op.create_index("ix_room_participants_room_session_id", "room_participants", ["room_session_id"])
    op.create_index("ix_room_participants_participant_id", "room_participants", ["participant_id"])
    op.create_index("ix_room_participants_external_id", "room_participants", ["external_id"])
    op.create_index("ix_room_participants_meeting_open", "room_participants", ["meeting_id", "left_at"])
    op.create_table(
        "room_stats_samples",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("participant_seq", SeqType, sa.ForeignKey("room_participants.seq", ondelete="CASCADE"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("sample_rate_ms", sa.Integer, nullable=False),
        sa.Column("packet_loss_send", sa.Float, nullable=True),
        sa.Column("packet_loss_recv", sa.Float, nullable=True),
        sa.Column("bitrate_send", sa.Float, nullable=True),
        sa.Column("bitrate_recv", sa.Float, nullable=True),
        sa.Column("extra", sa.JSON, nullable=True),
    )
    op.create_index("ix_room_stats_samples_participant_seq", "room_stats_samples", ["participant_seq"])

    op.create_table(
        "webhook_endpoints",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("organization_id", sa.String(36), sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("events", sa.JSON, nullable=False),
        sa.Column("description", sa.String(200), nullable=False, server_default=""),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_webhook_endpoints_organization_id", "webhook_endpoints", ["organization_id"])
    op.create_table(
        "webhook_events",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("endpoint_id", sa.String(36), sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("meeting_id", sa.String(36), nullable=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("give_up_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_webhook_events_event_id", "webhook_events", ["event_id"])
    op.create_index("ix_webhook_events_endpoint_id", "webhook_events", ["endpoint_id"])
    op.create_index("ix_webhook_events_due", "webhook_events", ["state", "next_attempt_at"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("endpoint_id", sa.String(36), sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
        sa.Column("webhook_event_id", sa.String(36), sa.ForeignKey("webhook_events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("succeeded", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("response_body", sa.Text, nullable=True),
    )
    op.create_index("ix_webhook_deliveries_endpoint_id", "webhook_deliveries", ["endpoint_id"])
    op.create_index("ix_webhook_deliveries_webhook_event_id", "webhook_deliveries", ["webhook_event_id"])


def downgrade() -> None:
    for table in ("webhook_deliveries", "webhook_events", "webhook_endpoints",
                  "room_stats_samples", "room_participants", "room_sessions"):
        op.drop_table(table)
