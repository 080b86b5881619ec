"""Room keys (herewith.auth.room_keys): JWTs (HS256) that any JWT library reads, checked for room and expiry."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import jwt
import pytest

from herewith.auth.room_keys import InvalidRoomKey, issue_room_key, verify_room_key

UTC = timezone.utc
END = datetime(2099, 2, 18, 14, 23, 0, 123000, tzinfo=UTC)


@pytest.mark.parametrize("room_name", ["/abc-123", "/prefix-0f8fad5b-d9cb-469f-a165-70867728950e", "/ünï \"q\""])
@pytest.mark.parametrize("role", ["host", "viewer"])
def test_room_key_is_an_hs256_jwt_with_room_role_and_expiry(room_name: str, role: str) -> None:
    secret = "s3cret-" + "x" * 40
    token = issue_room_key(secret, room_name, role, END)
    exp = int((END + timedelta(hours=1)).timestamp())
    assert jwt.decode(token, secret, algorithms=["HS256"]) == {"rn": room_name.lstrip("/"), "role": role, "exp": exp}
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "HS256", "typ": "JWT"}


K1, K2 = "k1" * 24, "k2" * 24  # 48 bytes: PyJWT warns about HS256 keys shorter than 32


def test_room_key_verifies_for_its_room_and_role_until_expiry() -> None:
    token = issue_room_key(K1, "/room-a", "viewer", END)
    claims = verify_room_key(K1, token, "/room-a", END)
    assert (claims.room_name, claims.role, claims.expires_at) == ("/room-a", "viewer", int(END.timestamp()) + 3600)
    with pytest.raises(InvalidRoomKey):
        verify_room_key(K2, token, "/room-a", END)  # another server's secret
    with pytest.raises(InvalidRoomKey):
        verify_room_key(K1, token, "/room-b", END)
    with pytest.raises(InvalidRoomKey):
        verify_room_key(K1, token, "/room-a", END + timedelta(hours=1, seconds=1))
    with pytest.raises(ValueError):
        issue_room_key(K1, "/room-a", "owner", END)
