"""Request and response models of ``/v1/webhooks`` (Herewith's API for what the vendor keeps in a dashboard)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, StrictStr, field_validator

# CONTRACT.md "Webhooks": the event types. The in-room ones are emitted by herewith.sessions.service.
EVENT_TYPES = (
    "room.client.joined",
    "room.client.left",
    "room.client.knocked",
    "room.client.knockCancelled",
    "room.session.started",
    "room.session.ended",
    "recording.finished",
    "transcription.started",
    "transcription.finished",
    "transcription.failed",
)


def validate_url(value: str) -> str:
    """A receiver URL: absolute ``http``/``https`` with a host, at most 2000 characters; ValueError otherwise."""
    if len(value) > 2000:
        raise ValueError("must be at most 2000 characters")
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        raise ValueError("must be an http:// or https:// URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise ValueError("must be an http:// or https:// URL")
    return value


def validate_events(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if not value:
        raise ValueError("must name at least one event type")
    unknown = [v for v in value if v not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event type {unknown[0]!r}; one of {', '.join(EVENT_TYPES)}")
    return list(dict.fromkeys(value))


class CreateWebhookRequest(BaseModel):
    """``url`` (required), ``events`` (default: every type), ``description``."""

    model_config = ConfigDict(extra="ignore")
    url: StrictStr
    events: list[StrictStr] | None = None
    description: StrictStr = ""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return validate_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return validate_events(value)

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        if len(value) > 200:
            raise ValueError("must be at most 200 characters")
        return value


class UpdateWebhookRequest(BaseModel):
    """``PATCH``: any of ``url``, ``events``, ``description``, ``enabled``."""

    model_config = ConfigDict(extra="ignore")
    url: StrictStr | None = None
    events: list[StrictStr] | None = None
    description: StrictStr | None = None
    enabled: bool | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else validate_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return validate_events(value)


class WebhookOut(BaseModel):
    webhookId: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    createdAt: str


class WebhookCreated(WebhookOut):
    """The created endpoint with its signing ``secret`` (shown this once)."""

    secret: str


class WebhookSecret(BaseModel):
    webhookId: str
    secret: str


class WebhookList(BaseModel):
    results: list[WebhookOut]
    cursor: str | None


class DeliveryOut(BaseModel):
    """One delivery attempt."""

    deliveryId: str
    eventId: str
    type: str
    attempt: int
    createdAt: str
    durationMs: int
    statusCode: int | None
    succeeded: bool
    error: str | None


class DeliveryList(BaseModel):
    results: list[DeliveryOut]
    cursor: str | None


class RedeliveryOut(BaseModel):
    eventId: str
    webhookId: str
    state: str
