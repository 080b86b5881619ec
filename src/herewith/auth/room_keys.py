"""Room keys: the ``roomKey`` token of host and viewer URLs (CONTRACT.md, "Meetings" and "Room roles").

A room key is a JWT (HS256, the server's signing key) with claims ``rn`` (room name without the leading
slash), ``role`` (``host`` | ``viewer`` | ``recorder``) and ``exp`` (epoch seconds: endDate + 1 hour, when host
privileges end per the contract's lifecycle). It is verified by signature, so no table holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from herewith.kit.time import add_clamped

ROLES = ("host", "viewer", "recorder")  # recorder: the cloud recorder's page (herewith.recordings.control)
HOST_PRIVILEGE_SLACK = timedelta(hours=1)


@dataclass(frozen=True)
class RoomKeyClaims:
    room_name: str  # with the leading slash
    role: str
    expires_at: int  # epoch seconds


class InvalidRoomKey(Exception):
    """The token is not a room key of this server, is for another room, or has expired."""


def issue_room_key(secret: str, room_name: str, role: str, end_date: datetime) -> str:
    """Sign a room key for ``role`` in ``room_name`` valid until ``end_date`` + 1 hour (a JWT, HS256,
    RFC 7519 compact serialization). Raises ``ValueError`` for a role not in :data:`ROLES`."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    exp = int(add_clamped(end_date, HOST_PRIVILEGE_SLACK).timestamp())
    return jwt.encode({"rn": room_name.lstrip("/"), "role": role, "exp": exp}, secret, algorithm="HS256")


def verify_room_key(secret: str, token: str, room_name: str, now: datetime) -> RoomKeyClaims:
    """Check a room key for ``room_name`` at time ``now`` (aware UTC).

    Raises :class:`InvalidRoomKey` when the signature is wrong, the room differs, or ``now`` is past ``exp``.
    """
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False})
    except jwt.PyJWTError as exc:
        raise InvalidRoomKey(str(exc)) from None
    if claims.get("rn") != room_name.lstrip("/") or claims.get("role") not in ROLES:
        raise InvalidRoomKey("room key is for another room")
    exp = claims.get("exp")
    if not isinstance(exp, int) or now.timestamp() > exp:
        raise InvalidRoomKey("room key has expired")
    return RoomKeyClaims(room_name="/" + claims["rn"], role=claims["role"], expires_at=exp)
