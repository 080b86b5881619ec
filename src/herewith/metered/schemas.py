"""Request and answer bodies of the second vendor's room API, with that vendor's field names (seed 004).

Integers the vendor's own samples send as ``0`` (``expireUnixSec``, ``notBeforeUnixSec``,
``maxParticipants``, ``ejectAfterElapsedTimeInSec``, ``endMeetingAfterNoActivityInSec``) mean "not set" when
0. Unknown fields are ignored (a room read back with ``_id``, ``app``, ``created`` may be sent again).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: URL-friendly room names: letters, digits, ``-`` and ``_`` (the vendor: "no spaces"); at most 99 so that
#: the stored name with its leading slash fits the meetings table.
ROOM_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,99}$")
MAX_UNIX_SEC = 253402300799  # 9999-12-31T23:59:59Z: the calendar's end for every database here
WEBHOOK_FIELDS = ("meetingJoinWebhook", "meetingLeftWebhook", "meetingStartedWebhook", "meetingEndedWebhook")

UnixSec = Field(default=None, ge=0, le=MAX_UNIX_SEC)
Seconds = Field(default=None, ge=0, le=10 * 365 * 86400)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RoomOptions(_Body):
    """Every option of a room (``POST /api/v1/room``; ``PUT /api/v1/room/{roomName}`` takes the same fields,
    each one optional, and changes only those given). Defaults are those of the vendor's sample answer.

    ``roomMode`` is Herewith's addition: ``normal`` (peer-to-peer, up to 4 senders; the default) or
    ``group`` (through the Janus SFU)."""

    privacy: Literal["public", "private"] = "public"
    expireUnixSec: int | None = UnixSec
    ejectAtRoomExp: bool = False
    notBeforeUnixSec: int | None = UnixSec
    maxParticipants: int | None = Field(default=None, ge=0, le=100_000)
    autoJoin: bool = False
    showInviteBox: bool = True
    enableRequestToJoin: bool = False
    enableChat: bool = False
    newChatForMeetingSession: bool = True
    enableScreenSharing: bool = True
    joinVideoOn: bool = True
    joinAudioOn: bool = True
    enableRecording: bool = False
    ownerOnlyBroadcast: bool = False
    recordRoom: bool = False
    ejectAfterElapsedTimeInSec: int | None = Seconds
    meetingJoinWebhook: str | None = Field(default=None, max_length=2000)
    meetingLeftWebhook: str | None = Field(default=None, max_length=2000)
    meetingStartedWebhook: str | None = Field(default=None, max_length=2000)
    meetingEndedWebhook: str | None = Field(default=None, max_length=2000)
    endMeetingAfterNoActivityInSec: int | None = Seconds
    audioOnlyRoom: bool = False
    enableComposition: bool = False
    compositionLayout: Literal["grid", "active_speaker"] | None = None
    recordComposition: bool = False
    enableRTMPOut: bool = False
    rtmpOutURL: str | None = Field(default=None, max_length=2000)
    enableLiveStreaming: bool = False
    lang: str = Field(default="en", min_length=2, max_length=16, pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")
    deleteOnExp: bool = False
    roomMode: Literal["normal", "group"] = "normal"

    @model_validator(mode="after")
    def _rtmp_needs_url(self) -> RoomOptions:
        if self.enableRTMPOut and not self.rtmpOutURL:
            raise ValueError("rtmpOutURL is required when enableRTMPOut is true")
        return self

    def stored(self) -> dict[str, Any]:
        """The options as stored and answered: zeros of the "not set" integers dropped."""
        out = self.model_dump()
        for key in ("expireUnixSec", "notBeforeUnixSec", "maxParticipants", "ejectAfterElapsedTimeInSec",
                    "endMeetingAfterNoActivityInSec"):
            if not out.get(key):
                out[key] = None
        return out


class CreateRoomRequest(RoomOptions):
    """``POST /api/v1/room``: the options and ``roomName`` (generated when absent)."""

    roomName: str | None = Field(default=None, max_length=99)

    @field_validator("roomName")
    @classmethod
    def _v_name(cls, v: str | None) -> str | None:
        if v is not None and not ROOM_NAME_RE.match(v):
            raise ValueError("roomName must be URL friendly: letters, digits, - and _ only, no spaces")
        return v


class CreateTokenRequest(_Body):
    """``POST /api/v1/token``: a token for ``roomName``, or for every room of the app with ``globalToken``."""

    roomName: str | None = Field(default=None, max_length=99)
    globalToken: bool = False
    isAdmin: bool = False
    name: str | None = Field(default=None, max_length=100)
    email: str | None = Field(default=None, max_length=320)
    meta: str | None = Field(default=None, max_length=1000)
    externalUserId: str | None = Field(default=None, max_length=36)
    expireUnixSec: int | None = UnixSec
    notBeforeUnixSec: int | None = UnixSec
    ejectAfterElapsedTimeInSec: int | None = Seconds
    joinVideoOn: bool | None = None
    joinAudioOn: bool | None = None
    disableVideo: bool = False
    disableAudio: bool = False
    disableScreenSharing: bool = False

    @model_validator(mode="after")
    def _room_or_global(self) -> CreateTokenRequest:
        if not self.globalToken and not self.roomName:
            raise ValueError("roomName is required unless globalToken is true")
        return self
