"""API key generation and hashing, and HMAC signatures.

API keys carry 256 bits of randomness, so a single SHA-256 is the right hash for them (a slow
password hash buys nothing against a key that cannot be guessed, and would cost every request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

API_KEY_PREFIX = "hw_"


def generate_api_key() -> str:
    """A new API key: ``hw_`` + 43 URL-safe characters (256 bits)."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """Hex SHA-256 of the key, as stored; the key itself is never stored or logged."""
    return hashlib.sha256(key.encode()).hexdigest()


def hmac_sha256_hex(secret: str | bytes, message: bytes) -> str:
    """Hex HMAC-SHA256 of ``message`` with ``secret``."""
    if isinstance(secret, str):
        secret = secret.encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
