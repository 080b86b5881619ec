"""API key generation and hashing, and every HMAC of the server.

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


def hmac_digest(secret: str | bytes, message: str | bytes, algorithm: str = "sha256") -> bytes:
    """The HMAC of ``message`` with ``secret`` (strings as UTF-8), raw bytes; ``algorithm`` a hashlib name.
    Every HMAC of the server goes through here (webhook signatures, TURN credentials, SFU room ids)."""
    if isinstance(secret, str):
        secret = secret.encode()
    if isinstance(message, str):
        message = message.encode()
    return hmac.digest(secret, message, algorithm)


def hmac_sha256_hex(secret: str | bytes, message: str | bytes) -> str:
    """Hex HMAC-SHA256 of ``message`` with ``secret``."""
    return hmac_digest(secret, message).hex()
