"""Room keys: the ``roomKey`` token of host and viewer URLs (CONTRACT.md, "Meetings" and "Room roles"), and
participant tokens, the same kind of token with more claims (CONTRACT.md, "Another vendor's room options").

A room key is a JWT (HS256, the server's signing key) with claims ``rn`` (room name without the leading
slash), ``role`` (``host`` | ``viewer`` | ``recorder`` | ``member`` | ``captioner``) and ``exp`` (epoch seconds: endDate + 1
hour, when host privileges end per the contract's lifecycle). It is verified by signature, so no table holds
it.

A participant token (:func:`issue_participant_token`; the second vendor's ``POST /api/v1/token``) adds:
``org`` (the organization; with no ``rn`` the token is valid in every room of that organization, a
"global" token), ``nbf`` (not before, epoch seconds; RFC 7519), optional ``exp`` (no expiry when absent),
``name``, ``email``, ``meta``, ``ext`` (external user id), ``eject`` (seconds after joining when the holder
is removed), ``jv`` / ``ja`` (camera / microphone on when joining) and ``dv`` / ``da`` / ``ds`` (no camera /
microphone / screen share). ``role`` is ``host`` for an admin, ``member`` otherwise (enters private rooms,
sends media).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from herewith.kit.time import add_clamped

# recorder: the cloud recorder's page (herewith.recordings.control); captioner: the live captioner
# (herewith.captions), which receives everyone's audio and sends captions.
ROLES = ("host", "viewer", "recorder", "member", "captioner")
HOST_PRIVILEGE_SLACK = timedelta(hours=1)


@dataclass(frozen=True)
class RoomKeyClaims:
    """A verified room key or participant token. ``room_name`` has the leading slash (None: any room of
    ``organization_id``); times are epoch seconds; the participant fields are None/False in room keys."""

    room_name: str | None
    role: str
    expires_at: int | None
    organization_id: str | None = None
    not_before: int | None = None
    name: str | None = None
    email: str | None = None
    meta: str | None = None
    external_id: str | None = None
    eject_after_seconds: int | None = None
    join_video_on: bool | None = None
    join_audio_on: bool | None = None
    disable_video: bool = False
    disable_audio: bool = False
    disable_screen: bool = False


class InvalidRoomKey(Exception):
    """The token is not a room key of this server, is for another room, or has expired."""


def issue_room_key(secret: str, room_name: str, role: str, end_date: datetime) -> str:
    """Sign a room key for ``role`` in ``room_name`` valid until ``end_date`` + 1 hour (a JWT, HS256,
    RFC 7519 compact serialization). Raises ``ValueError`` for a role not in :data:`ROLES`."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    exp = int(add_clamped(end_date, HOST_PRIVILEGE_SLACK).timestamp())
    return jwt.encode({"rn": room_name.lstrip("/"), "role": role, "exp": exp}, secret, algorithm="HS256")


def issue_participant_token(secret: str, organization_id: str, *, room_name: str | None, admin: bool,
                            expires_at: int | None = None, not_before: int | None = None, name: str | None = None,
                            email: str | None = None, meta: str | None = None, external_id: str | None = None,
                            eject_after_seconds: int | None = None, join_video_on: bool | None = None,
                            join_audio_on: bool | None = None, disable_video: bool = False,
                            disable_audio: bool = False, disable_screen: bool = False) -> str:
    """Sign a participant token (JWT, HS256) for ``room_name`` (None: every room of the organization) with
    role ``host`` (``admin``) or ``member``; claims as in the module docstring, absent when not given."""
    claims: dict[str, Any] = {"org": organization_id, "role": "host" if admin else "member"}
    if room_name is not None:
        claims["rn"] = room_name.lstrip("/")
    optional = {"exp": expires_at, "nbf": not_before, "name": name, "email": email, "meta": meta,
                "ext": external_id, "eject": eject_after_seconds, "jv": join_video_on, "ja": join_audio_on}
    claims.update({k: v for k, v in optional.items() if v is not None})
    claims.update({k: True for k, v in (("dv", disable_video), ("da", disable_audio), ("ds", disable_screen)) if v})
    return jwt.encode(claims, secret, algorithm="HS256")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def verify_room_key(secret: str, token: str, room_name: str, now: datetime,
                    organization_id: str | None = None) -> RoomKeyClaims:
    """Check a room key or participant token for ``room_name`` at time ``now`` (aware UTC).

    ``organization_id`` is the room's organization: a token without a room (a global participant token) is
    valid in the rooms of its ``org`` only. Raises :class:`InvalidRoomKey` when the signature is wrong, the
    room (or organization) differs, ``now`` is before ``nbf`` or past ``exp``, or a room key lacks ``exp``.
    """
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False})
    except jwt.PyJWTError as exc:
        raise InvalidRoomKey(str(exc)) from None
    if not isinstance(claims, dict) or claims.get("role") not in ROLES:
        raise InvalidRoomKey("not a room key")
    org = _text(claims.get("org"))
    if "rn" in claims:
        if claims.get("rn") != room_name.lstrip("/"):
            raise InvalidRoomKey("room key is for another room")
    elif org is None or org != organization_id:
        raise InvalidRoomKey("token is for another organization")
    if org is not None and organization_id is not None and org != organization_id:
        raise InvalidRoomKey("token is for another organization")
    exp = claims.get("exp")
    if exp is None and org is None:
        raise InvalidRoomKey("room key has no expiry")
    if exp is not None and (_int(exp) is None or now.timestamp() > exp):
        raise InvalidRoomKey("room key has expired")
    nbf = claims.get("nbf")
    if nbf is not None and (_int(nbf) is None or now.timestamp() < nbf):
        raise InvalidRoomKey("token is not valid yet")
    eject = _int(claims.get("eject"))
    return RoomKeyClaims(
        room_name="/" + claims["rn"] if "rn" in claims else None, role=claims["role"], expires_at=_int(exp),
        organization_id=org, not_before=_int(nbf), name=_text(claims.get("name")), email=_text(claims.get("email")),
        meta=_text(claims.get("meta")), external_id=_text(claims.get("ext")),
        eject_after_seconds=eject if eject and eject > 0 else None,
        join_video_on=claims.get("jv") if isinstance(claims.get("jv"), bool) else None,
        join_audio_on=claims.get("ja") if isinstance(claims.get("ja"), bool) else None,
        disable_video=claims.get("dv") is True, disable_audio=claims.get("da") is True,
        disable_screen=claims.get("ds") is True,
    )
