"""Webhook signatures (CONTRACT.md, "Webhooks").

``Whereby-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is HMAC-SHA256 of ``"<t>.<exact body bytes>"``
with the endpoint's secret. Herewith sends the same value as ``Herewith-Signature`` too.

Usage (a receiver)::

    ok = verify_signature(secret, request.headers["Whereby-Signature"], await request.body(), now=time.time())
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from herewith.kit.crypto import hmac_sha256_hex

SIGNATURE_HEADERS = ("Whereby-Signature", "Herewith-Signature")


def compact_json(value: Any) -> bytes:
    """The exact bytes sent: compact JSON (no spaces), UTF-8, keys in insertion order."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value ``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">``."""
    mac = hmac_sha256_hex(secret, str(timestamp).encode() + b"." + body)
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, now: float | None = None, tolerance: float = 300) -> bool:
    """True when ``header`` is a valid signature of ``body`` (and, when ``now`` is given, fresh within ``tolerance`` s)."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if now is not None and abs(now - timestamp) > tolerance:
        return False
    expected = hmac_sha256_hex(secret, str(timestamp).encode() + b"." + body)
    return any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", []))
