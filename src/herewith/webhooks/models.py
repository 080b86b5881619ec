"""Webhook tables: endpoints, the outbox (one event row per endpoint) and one delivery row per attempt."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from herewith.db.base import Base, UTCDateTime

SeqType = BigInteger().with_variant(Integer, "sqlite")


class WebhookEndpoint(Base):
    """A receiver URL of an organization, the event types it wants and its signing ``secret``."""

    __tablename__ = "webhook_endpoints"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(String(200), default="")
    secret: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set: the endpoint receives the events of this meeting's room only (a per-room webhook URL of the second
    # vendor's room API); null: every room of the organization.
    meeting_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)


class WebhookEvent(Base):
    """The outbox: one event for one endpoint, with the exact body sent on every attempt.

    ``event_id`` is the envelope's ``id`` (shared by the endpoints that got the same event, and the same on
    every attempt). ``state``: ``pending`` | ``sending`` (a worker claimed it; ``next_attempt_at`` is the end of
    its lease) | ``delivered`` | ``failed`` (gave up after the retry window). ``next_attempt_at`` is when a
    worker may take it; a ``sending`` row whose lease ran out is taken again, so a crash mid-send means a retry
    later, never a loss.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_due", "state", "next_attempt_at"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    event_id: Mapped[str] = mapped_column(String(36), index=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[str] = mapped_column(String(36))
    meeting_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    give_up_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WebhookDelivery(Base):
    """One attempt to deliver one event to one endpoint (``status_code`` null on a network error/timeout)."""

    __tablename__ = "webhook_deliveries"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    webhook_event_id: Mapped[str] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)
