"""Checking a webhook delivery: the ``Whereby-Signature`` scheme (contract, "Webhooks").

The header is ``t=<unix seconds>,v1=<hex>``, where ``v1`` is the HMAC-SHA256 of ``"<t>.<exact body bytes>"``
with the endpoint's signing secret (Herewith sends the same value as ``Herewith-Signature`` too). A header
may carry several ``v1`` values; one matching is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from herewith_client._exceptions import WebhookVerificationError
from herewith_client.types import WebhookEvent

SIGNATURE_HEADER = "Whereby-Signature"
DEFAULT_TOLERANCE = 300  # seconds


def verify_webhook(body: bytes | str, header: str | None, secret: str, tolerance: float | None = DEFAULT_TOLERANCE,
                   *, now: float | None = None) -> WebhookEvent:
    """Check a delivery and return its event; raise :class:`~herewith_client.WebhookVerificationError`
    when it is not genuine or not fresh.

    ``body``: the request body exactly as received (bytes; a str is encoded as UTF-8): re-serialized JSON
    will not match. ``header``: the ``Whereby-Signature`` header's value. ``secret``: the endpoint's signing
    secret (``whsec_...``). ``tolerance``: the largest difference in seconds between the signature's
    timestamp and ``now`` (default: the current time), either way, which refuses replays of old deliveries;
    None skips that check.

    Usage (any web framework)::

        event = verify_webhook(await request.body(), request.headers.get("Whereby-Signature"), SECRET)
        if event.type == "room.client.joined": ...
    """
    if isinstance(body, str):
        body = body.encode()
    if not header:
        raise WebhookVerificationError(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and timestamp is None:
            try:
                timestamp = int(value)
            except ValueError:
                raise WebhookVerificationError("malformed timestamp in the signature header") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise WebhookVerificationError("the signature header needs t=<unix seconds> and v1=<hex>")
    if tolerance is not None:
        current = time.time() if now is None else now
        if abs(current - timestamp) > tolerance:
            raise WebhookVerificationError(
                f"timestamp {timestamp} is {current - timestamp:+.0f} s from now, outside the tolerance of {tolerance} s")
    expected = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise WebhookVerificationError("signature mismatch: wrong secret, or the body was changed")
    try:
        return WebhookEvent.model_validate(json.loads(body))
    except ValueError as exc:
        raise WebhookVerificationError(f"the signed body is not a webhook event: {exc}") from None
