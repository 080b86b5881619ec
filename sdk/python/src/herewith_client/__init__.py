"""herewith_client: the Python client of the Herewith REST API (Whereby REST API v1 compatible).

Usage::

    from herewith_client import Herewith, NotFoundError, verify_webhook

    client = Herewith(base_url="http://127.0.0.1:8080", api_key="hw_...")
    meeting = client.meetings.create(end_date="2099-02-18T14:23:00Z", fields=["hostRoomUrl"])
    for m in client.meetings.list():          # follows the cursors, page after page
        print(m.meetingId, m.roomUrl)

See ``docs/sdk.md`` in the Herewith repository.
"""

from herewith_client._client import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, AsyncHerewith, Herewith, __version__
from herewith_client._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    GoneError,
    HerewithError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    WebhookVerificationError,
)
from herewith_client._webhooks import SIGNATURE_HEADER, verify_webhook
from herewith_client.pagination import AsyncPage, AsyncPaginator, SyncPage
from herewith_client.types import (
    AccessLink,
    Delivery,
    Meeting,
    ParticipantDetail,
    ParticipantInsight,
    Recording,
    Redelivery,
    RoomInsight,
    RoomSessionInsight,
    Summary,
    SummaryCreated,
    Transcription,
    TranscriptionCreated,
    Webhook,
    WebhookEvent,
    WebhookSecret,
    WebhookWithSecret,
)

__all__ = [
    "DEFAULT_MAX_RETRIES", "DEFAULT_TIMEOUT", "SIGNATURE_HEADER", "APIConnectionError", "APIError", "APIStatusError",
    "APITimeoutError", "AccessLink", "AsyncHerewith", "AsyncPage", "AsyncPaginator", "AuthenticationError",
    "BadRequestError", "ConflictError", "Delivery", "GoneError", "Herewith", "HerewithError", "InternalServerError",
    "Meeting", "NotFoundError", "ParticipantDetail", "ParticipantInsight", "PayloadTooLargeError",
    "PermissionDeniedError", "RateLimitError", "Recording", "Redelivery", "RoomInsight", "RoomSessionInsight",
    "Summary", "SummaryCreated", "SyncPage", "Transcription", "TranscriptionCreated", "Webhook", "WebhookEvent", "WebhookSecret", "WebhookVerificationError", "WebhookWithSecret",
    "__version__", "verify_webhook",
]
