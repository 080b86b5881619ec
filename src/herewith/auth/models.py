"""Organizations and their API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from herewith.db.base import Base, UTCDateTime


class Organization(Base):
    """A customer of the API. Everything it creates is invisible to every other organization.

    ``plan``: ``build`` (100 points/min) or ``grow`` (1000, default); ``rate_limit_points`` overrides it.
    """

    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(20), default="grow")
    rate_limit_points: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiKey(Base):
    """An API key of an organization, stored as its SHA-256 (``key_hash``); ``prefix`` helps people tell keys apart."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


@dataclass(frozen=True, slots=True)
class OrganizationRef:
    """The organization a request acts for, as authentication resolves it: ``id``, ``plan`` and the custom
    budget ``rate_limit_points`` (None: the plan's): what the rate limiter and the endpoints need of it."""

    id: str
    plan: str
    rate_limit_points: int | None = None
