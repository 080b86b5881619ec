"""A room's policy: the rules the server enforces in one room beyond its meeting's (vendor-neutral).

Any API may give a room such rules (today the second vendor's room API, :mod:`herewith.metered`, maps its
options onto them: CONTRACT.md, "Another vendor's room options"); the room lookup
(:func:`herewith.rooms.service.lookup_room`), the live room (:mod:`herewith.signaling.live_room`, for
peer-to-peer and Janus rooms alike) and the room page read them from here. A meeting without a policy
(``meetings.room_policy`` null) gets :data:`DEFAULT_POLICY`, which changes nothing.

What each rule does (all times are aware UTC, all durations whole seconds):

- ``private``: joining needs a participant token (a room key with a role); without one the join is
  refused, or, with ``request_to_join``, the visitor knocks and a host (an admin token) admits or rejects.
- ``not_before`` / ``expires_at``: no join before / from then (the page says so; signaling refuses);
  ``eject_at_expiry``: everyone is removed at ``expires_at``.
- ``max_participants``: people in the call at once (the cloud recorder aside); the next is told it is full.
- ``eject_after_seconds``: each participant is removed that long after joining (a token may set its own;
  the shorter one applies).
- ``end_after_no_activity_seconds``: the call ends when nobody in it has had a microphone, camera or
  screen on for that long.
- ``owner_only_broadcast``: only hosts (admin tokens) send media; ``audio_only``: no video (camera nor
  screen); ``screen_share``: screen sharing allowed; ``chat``: chat messages allowed.
- ``join_video_on`` / ``join_audio_on`` / ``auto_join``: the page's pre-call defaults (not enforced: a
  person may still turn a device on, within what the rules above allow).

Usage::

    policy = RoomPolicy.from_json(meeting.room_policy)
    policy.join_refusal(now)                      # None, or ("not_yet" | "expired", message)
    grants = policy.media_grants(is_host=True, token=claims)   # MediaGrants(audio=True, video=False, screen=False)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from typing import Any, Protocol

__all__ = ["DEFAULT_POLICY", "MediaGrants", "RoomPolicy", "TokenLimits"]


@dataclass(frozen=True, slots=True)
class MediaGrants:
    """What one participant may send: microphone (``audio``), camera (``video``), screen share (``screen``)."""

    audio: bool = True
    video: bool = True
    screen: bool = True

    @property
    def any(self) -> bool:
        return self.audio or self.video or self.screen


NO_MEDIA = MediaGrants(False, False, False)


class TokenLimits(Protocol):
    """What a participant token may narrow (:class:`herewith.auth.room_keys.RoomKeyClaims` has it)."""

    @property
    def disable_audio(self) -> bool: ...

    @property
    def disable_video(self) -> bool: ...

    @property
    def disable_screen(self) -> bool: ...

    @property
    def eject_after_seconds(self) -> int | None: ...


def _ts(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def _dt(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), timezone.utc) if value is not None else None


@dataclass(frozen=True, slots=True)
class RoomPolicy:
    """The rules of one room (see the module docstring). The defaults change nothing."""

    private: bool = False
    request_to_join: bool = False
    not_before: datetime | None = None
    expires_at: datetime | None = None
    eject_at_expiry: bool = False
    max_participants: int | None = None
    eject_after_seconds: int | None = None
    end_after_no_activity_seconds: int | None = None
    owner_only_broadcast: bool = False
    audio_only: bool = False
    screen_share: bool = True
    chat: bool = True
    join_video_on: bool = True
    join_audio_on: bool = True
    auto_join: bool = False

    # ------------------------------------------------------------------------------------- storage
    def to_json(self) -> dict[str, Any]:
        """A JSON object for ``meetings.room_policy``: times as epoch seconds, every field present."""
        out = asdict(self)
        out["not_before"], out["expires_at"] = _ts(self.not_before), _ts(self.expires_at)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RoomPolicy:
        """The policy stored by :meth:`to_json` (unknown keys ignored, missing ones default); None gives
        :data:`DEFAULT_POLICY`."""
        if not data:
            return DEFAULT_POLICY
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["not_before"], values["expires_at"] = _dt(values.get("not_before")), _dt(values.get("expires_at"))
        return replace(DEFAULT_POLICY, **values)

    # --------------------------------------------------------------------------------------- rules
    def join_refusal(self, now: datetime) -> tuple[str, str] | None:
        """Why nobody may join at ``now``: ``("not_yet", message)`` before ``not_before``, ``("expired",
        message)`` from ``expires_at`` on; None when joins are open."""
        if self.not_before is not None and now < self.not_before:
            return "not_yet", "This meeting room opens at " + self.not_before.strftime("%Y-%m-%d %H:%M:%S UTC") + "."
        if self.expires_at is not None and now >= self.expires_at:
            return "expired", "This meeting room has expired."
        return None

    def media_grants(self, is_host: bool, token: TokenLimits | None = None) -> MediaGrants:
        """What a participant may send: nothing for a non-host under ``owner_only_broadcast``; no camera or
        screen under ``audio_only``; no screen without ``screen_share``; narrowed further by the token's
        ``disable_*`` claims."""
        if self.owner_only_broadcast and not is_host:
            return NO_MEDIA
        grants = MediaGrants(audio=True, video=not self.audio_only, screen=self.screen_share and not self.audio_only)
        if token is not None:
            grants = MediaGrants(audio=grants.audio and not token.disable_audio,
                                 video=grants.video and not token.disable_video,
                                 screen=grants.screen and not token.disable_screen)
        return grants

    def eject_after(self, token: TokenLimits | None = None) -> int | None:
        """Seconds after joining when a participant is removed: the shorter of the room's and the token's
        ``eject_after_seconds`` (None: never). Zero or negative values mean no limit (the vendor's samples
        send 0 for "not set")."""
        limits = [s for s in (self.eject_after_seconds, token.eject_after_seconds if token else None) if s and s > 0]
        return min(limits) if limits else None

    @property
    def is_default(self) -> bool:
        return self == DEFAULT_POLICY


DEFAULT_POLICY = RoomPolicy()
