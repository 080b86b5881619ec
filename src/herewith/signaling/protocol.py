"""The signaling protocol: every message of the room WebSocket, as one typed union.

Shared by the server (:mod:`herewith.signaling.endpoint`, :mod:`herewith.signaling.live_room`), the tests and
any Python client. Every frame is one JSON object with a ``type``; WebRTC fields are spelled as the browser
spells them (``sdp``, ``candidate``, ``sdpMid``, ``sdpMLineIndex``).

Client -> server (:data:`ClientMessage`)::

    join          {displayName?, externalId?, metadata?, roomKey?, deviceId?, userAgent?, resumeToken?,
                   audio?, video?, grid?}               first message of a connection (grid: sends sfu_view)
    knock         {}                                    ask to enter a locked room (after ``room_locked``)
    offer         {to, sdp}                             relayed to participant ``to`` as {from, sdp}
    answer        {to, sdp}                             idem
    candidate     {to, candidate, sdpMid, sdpMLineIndex}  idem; ``candidate`` "" or null = end of candidates
    update        {audio?, video?, screen?, displayName?, streams?}  own media state -> participant_updated
    chat          {text}                                1..2000 characters -> chat to everyone
    stats         {packetLossSend, packetLossRecv, bitrateSend, bitrateRecv, sampleRateMs}
    handle_knock  {participantId, accept}               host: admit (granted_visitor) or reject a knocker
    lock          {locked}                              host: lock or unlock the room
    remove        {participantId}                       host: remove someone from the call
    mute_request  {participantId, kind}                 host: ask someone to mute audio or video
    end_meeting   {}                                    host: end the call for everyone
    recording_start {}                                  host: start a cloud recording -> recording
    recording_stop  {}                                  host: stop it
    captions_start  {}                                  host: start live transcription and captions -> captions
    captions_stop   {}                                  host: stop them
    caption       {participantId, text, final, utteranceId}  the captioner only: what ``participantId`` said
    leave         {}                                    leave the call (the server closes the socket)
    ping / pong   {}                                    keepalive (either side may ping; the other pongs)
    sfu_publish   {sdp, sources?}                       group rooms (SFU): publisher offer -> sfu_published
    sfu_unpublish {}                                    group rooms: stop publishing
    sfu_answer    {sdp}                                 group rooms: answer to the latest sfu_offer
    sfu_candidate {pc, candidate, sdpMid, sdpMLineIndex}  group rooms: pc publisher | subscriber
    sfu_view      {tiles: [{participantId, source, width, height}]}  group rooms: what the grid shows now

Server -> client (:data:`ServerMessage`)::

    joined              {participantId, role, room, participants, iceServers, resumeToken, chat, grants?,
                         ejectAt?}   grants: what the room's policy lets this participant send (left out:
                                     everything its role sends); ejectAt: when an eject timer removes it
    room_locked         {}                        the room is locked: send ``knock`` and wait
    knock_pending       {}                        the knock reached the room; wait for a host
    knocked             {participant}             to hosts: someone knocks
    knock_cancelled     {participantId}           to hosts: the knocker left
    knock_handled       {participantId, accepted} to hosts (and to the knocker when rejected)
    participant_joined  {participant}
    participant_left    {participantId, reason}   reason: left | disconnected | removed | ended
    participant_updated {participant}
    room_updated        {locked}
    offer/answer/candidate  as sent, with ``from`` instead of ``to``
    chat                {from, displayName, text, at}
    mute_request        {from, kind}
    removed             {reason?}                 you were removed (by a host, or time_limit); the socket closes
    ended               {reason}                  ended (by a host) | deleted | expired | inactive (nobody sent
                                                  media for the room's limit); the socket closes
    recording           {state, recordingId?, message?}  a cloud recording's state: starting | recording |
                                                  stopped | failed | unavailable (to the asking host only)
    captions            {state, message?}         live transcription: starting | on | stopped | failed |
                                                  unavailable (to the asking host only)
    caption             {participantId, displayName, text, final, utteranceId, at}  a live caption (partial
                                                  text replaces the utterance's last one; final closes it)
    error               {code, message, ref?}     see :class:`ErrorCode`
    sfu_published       {sdp}                     group rooms: Janus's answer to sfu_publish
    sfu_offer           {sdp, subscription, streams}  group rooms: subscriber offer (streams: mid -> participant)
    sfu_restart         {reason}                  group rooms: Janus restarted; publish again
    active_speaker      {participantId, speakers}  group rooms: who speaks (speakers: loudest first)
    ping / pong         {}

Usage::

    msg = parse_client_message('{"type": "chat", "text": "hi"}')   # -> Chat, or raises ProtocolError
    text = dump(Joined(...))                                         # compact JSON text
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from herewith.kit.text import find_bad_text, may_hold_bad_text

# ---------------------------------------------------------------------------------------------------------
# Limits and field rules (CONTRACT.md, "Room roles": URL parameters that reach the server)

DISPLAY_NAME_MAX = 100
DISPLAY_NAME_FORBIDDEN = set("$!<>:;")
EXTERNAL_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
METADATA_MAX = 1000  # the contract passes metadata through to webhooks; Herewith caps its size
CHAT_MAX = 2000
SDP_MAX = 30_000
# A group room subscriber's SDP (Janus's sfu_offer and the browser's sfu_answer) has one audio and one video m-line
# per publisher it receives. Measured with Chromium 156: its answer to an Opus/VP8 offer weighs ~2 KB per publisher
# (98 KB for 50, 394 KB for 200, the room maximum) when a page receives everyone (no sfu_view: older pages, the
# cloud recorder). The cap leaves room above 200 publishers' worth; the signaling endpoint admits frames this large
# for sfu_answer only (Settings.signaling_max_answer_bytes).
SFU_SDP_MAX = 576 * 1024
CANDIDATE_MAX = 1000
PARTICIPANT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# C0 control characters and DEL: never in a name or an identifier; free text (metadata) keeps tab, line feed
# and carriage return. NUL and unpaired surrogates are refused in every field of every frame
# (parse_client_message): no database stores them.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_BUT_LINE_BREAKS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

ROLES_SENDING = frozenset({"host", "visitor", "granted_visitor", "owner", "member"})
"""Roles whose browsers send media; ``viewer`` and ``granted_viewer`` only receive."""


class ErrorCode(StrEnum):
    """Named errors (``error.code``), after livekit's errors-as-values."""

    MALFORMED = "malformed"  # not JSON, not an object, unknown type, or a field fails validation
    TOO_LARGE = "too_large"  # frame over the per-message cap
    RATE_LIMITED = "rate_limited"  # over the per-connection message rate; the message was dropped
    NOT_JOINED = "not_joined"  # a message that needs a joined participant came before join
    ALREADY_JOINED = "already_joined"
    FORBIDDEN = "forbidden"  # the role does not allow it (e.g. a visitor locking the room)
    VIEWER_CANNOT_SEND = "viewer_cannot_send"  # a viewer's SDP offers to send media
    UNKNOWN_PARTICIPANT = "unknown_participant"  # ``to``/``participantId`` is not in the room
    ROOM_NOT_FOUND = "room_not_found"
    ROOM_GONE = "room_gone"  # deleted or deactivated meeting
    ROOM_FULL = "room_full"  # normal rooms: at most 4 senders
    KNOCK_REJECTED = "knock_rejected"
    INVALID_ROOM_KEY = "invalid_room_key"  # informational: joined as a visitor instead
    INTERNAL = "internal"
    SFU_REFUSED = "sfu_refused"  # group rooms: Janus refused the request (message carries Janus's code)
    SFU_UNAVAILABLE = "sfu_unavailable"  # group rooms: the SFU cannot be reached right now
    TOKEN_REQUIRED = "token_required"  # a private room: joining needs a participant token
    ROOM_NOT_OPEN = "room_not_open"  # the room's policy opens it later (not before)
    MEDIA_NOT_ALLOWED = "media_not_allowed"  # the room's policy or the token forbids this track (SDP, publish, update)
    CHAT_DISABLED = "chat_disabled"  # the room's policy turned chat off


class ProtocolError(Exception):
    """A client frame that cannot be accepted; ``code`` is an :class:`ErrorCode`."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def validate_display_name(value: str | None) -> str | None:
    """``displayName``: at most 100 characters, none of ``$!<>:;``; blank is None. Raises ValueError."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > DISPLAY_NAME_MAX:
        raise ValueError(f"displayName must be at most {DISPLAY_NAME_MAX} characters")
    bad = sorted(set(value) & DISPLAY_NAME_FORBIDDEN)
    if bad:
        raise ValueError("displayName must not contain any of $!<>:;")
    if CONTROL_RE.search(value):
        raise ValueError("displayName must not contain control characters")
    return value


def validate_external_id(value: str | None) -> str | None:
    """``externalId``: at most 36 of ``[A-Za-z0-9-_]``; empty is None. Raises ValueError."""
    if value is None or value == "":
        return None
    if not EXTERNAL_ID_RE.match(value):
        raise ValueError("externalId must be at most 36 characters of A-Z a-z 0-9 - _")
    return value


def validate_metadata(value: str | None) -> str | None:
    """``metadata``: an opaque string passed through to webhooks, at most 1000 characters, no control
    characters but tab, line feed and carriage return (JSON text is common here). Raises ValueError."""
    if value is None or value == "":
        return None
    if len(value) > METADATA_MAX:
        raise ValueError(f"metadata must be at most {METADATA_MAX} characters")
    if CONTROL_BUT_LINE_BREAKS_RE.search(value):
        raise ValueError("metadata must not contain control characters other than tab, line feed and carriage return")
    return value


def validate_token_text(value: str | None) -> str | None:
    """``deviceId``, ``userAgent``, ``roomKey``, ``resumeToken``: one line of printable text, no control
    characters (C0 or DEL; they are stored and logged). Raises ValueError."""
    if value is not None and CONTROL_RE.search(value):
        raise ValueError("must not contain control characters")
    return value


class _Msg(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_max_length=SDP_MAX)


ParticipantIdStr = Annotated[str, Field(pattern=PARTICIPANT_ID_RE.pattern)]

# ---------------------------------------------------------------------------------------------------------
# Client -> server


class Join(_Msg):
    type: Literal["join"] = "join"
    displayName: str | None = None
    externalId: str | None = None
    metadata: str | None = None
    roomKey: str | None = Field(default=None, max_length=2000)
    deviceId: str | None = Field(default=None, max_length=64)
    userAgent: str | None = Field(default=None, max_length=512)
    resumeToken: str | None = Field(default=None, max_length=64)
    audio: bool = True
    video: bool = True
    # group rooms: the client reports what its grid shows (sfu_view); until it does, the SFU forwards it nothing
    # (without it: every stream, from the first offer on)
    grid: bool = False

    @field_validator("displayName")
    @classmethod
    def _v_name(cls, v: str | None) -> str | None:
        return validate_display_name(v)

    @field_validator("externalId")
    @classmethod
    def _v_ext(cls, v: str | None) -> str | None:
        return validate_external_id(v)

    @field_validator("metadata")
    @classmethod
    def _v_meta(cls, v: str | None) -> str | None:
        return validate_metadata(v)

    @field_validator("roomKey", "deviceId", "userAgent", "resumeToken")
    @classmethod
    def _v_tokens(cls, v: str | None) -> str | None:
        return validate_token_text(v)


class Knock(_Msg):
    type: Literal["knock"] = "knock"


class Offer(_Msg):
    type: Literal["offer"] = "offer"
    to: ParticipantIdStr
    sdp: str = Field(min_length=1, max_length=SDP_MAX)


class Answer(_Msg):
    type: Literal["answer"] = "answer"
    to: ParticipantIdStr
    sdp: str = Field(min_length=1, max_length=SDP_MAX)


class Candidate(_Msg):
    type: Literal["candidate"] = "candidate"
    to: ParticipantIdStr
    candidate: str | None = Field(default=None, max_length=CANDIDATE_MAX)
    sdpMid: str | None = Field(default=None, max_length=64)
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=64)
    usernameFragment: str | None = Field(default=None, max_length=256)


class Streams(_Msg):
    """Stream ids (``MediaStream.id``) a sender uses, so receivers can tell camera from screen."""

    camera: str | None = Field(default=None, max_length=128)
    screen: str | None = Field(default=None, max_length=128)


class Update(_Msg):
    type: Literal["update"] = "update"
    audio: bool | None = None
    video: bool | None = None
    screen: bool | None = None
    displayName: str | None = None
    streams: Streams | None = None

    @field_validator("displayName")
    @classmethod
    def _v_name(cls, v: str | None) -> str | None:
        return validate_display_name(v)


class ChatSend(_Msg):
    type: Literal["chat"] = "chat"
    text: str = Field(min_length=1, max_length=CHAT_MAX)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text must not be blank")
        return v


class Stats(_Msg):
    """A WebRTC statistics sample from the page (every ~5 s): loss in percent, bitrates in bits per second."""

    type: Literal["stats"] = "stats"
    packetLossSend: float = Field(ge=0, le=100)
    packetLossRecv: float = Field(ge=0, le=100)
    bitrateSend: float = Field(ge=0, le=1e10)
    bitrateRecv: float = Field(ge=0, le=1e10)
    sampleRateMs: int = Field(ge=100, le=600_000)


class HandleKnock(_Msg):
    type: Literal["handle_knock"] = "handle_knock"
    participantId: ParticipantIdStr
    accept: bool


class Lock(_Msg):
    type: Literal["lock"] = "lock"
    locked: bool


class Remove(_Msg):
    type: Literal["remove"] = "remove"
    participantId: ParticipantIdStr


class MuteRequestSend(_Msg):
    type: Literal["mute_request"] = "mute_request"
    participantId: ParticipantIdStr
    kind: Literal["audio", "video"] = "audio"


class EndMeeting(_Msg):
    type: Literal["end_meeting"] = "end_meeting"


class RecordingStart(_Msg):
    """Host: start a cloud recording of the room (``recording.type`` must be ``cloud``)."""

    type: Literal["recording_start"] = "recording_start"


class RecordingStop(_Msg):
    """Host: stop the room's cloud recording."""

    type: Literal["recording_stop"] = "recording_stop"


class CaptionsStart(_Msg):
    """Host: start live transcription (and captions, when the meeting's ``liveTranscription.liveCaptions``)."""

    type: Literal["captions_start"] = "captions_start"


class CaptionsStop(_Msg):
    """Host: stop live transcription."""

    type: Literal["captions_stop"] = "captions_stop"


CAPTION_MAX = 2000
UTTERANCE_ID_MAX = 64


class CaptionSend(_Msg):
    """The captioner participant only (role ``captioner``): the words of one utterance of ``participantId``.

    ``final`` false: the utterance so far (the next caption of the same ``utteranceId`` replaces it); true:
    the utterance as committed (kept in the live transcript). ``text``: at most 2000 characters."""

    type: Literal["caption"] = "caption"
    participantId: ParticipantIdStr
    text: str = Field(max_length=CAPTION_MAX)
    final: bool = False
    utteranceId: str = Field(min_length=1, max_length=UTTERANCE_ID_MAX, pattern=r"^[A-Za-z0-9_.:-]+$")


class Leave(_Msg):
    type: Literal["leave"] = "leave"


class Ping(_Msg):
    type: Literal["ping"] = "ping"


class Pong(_Msg):
    type: Literal["pong"] = "pong"


# -- SFU signaling (group rooms on Janus; herewith.media.sfu_proxy). The browser keeps two peer connections
# with Janus: a publisher (it offers) and a subscriber (Janus offers through the server).


class SfuPublish(_Msg):
    """Offer of the publisher connection (first publish or a renegotiation, e.g. screen share).

    ``sources`` maps an m-line ``mid`` to ``camera`` or ``screen`` (unlisted mids are ``camera``)."""

    type: Literal["sfu_publish"] = "sfu_publish"
    sdp: str = Field(min_length=1, max_length=SDP_MAX)
    sources: dict[Annotated[str, Field(max_length=32)], Literal["camera", "screen"]] = Field(default_factory=dict, max_length=16)


class SfuUnpublish(_Msg):
    type: Literal["sfu_unpublish"] = "sfu_unpublish"


class SfuAnswer(_Msg):
    """Answer to the latest ``sfu_offer`` (the subscriber connection); up to :data:`SFU_SDP_MAX` characters."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_max_length=SFU_SDP_MAX)
    type: Literal["sfu_answer"] = "sfu_answer"
    sdp: str = Field(min_length=1, max_length=SFU_SDP_MAX)


class SfuCandidate(_Msg):
    """A local ICE candidate of the ``publisher`` or ``subscriber`` connection; ``candidate`` null = end."""

    type: Literal["sfu_candidate"] = "sfu_candidate"
    pc: Literal["publisher", "subscriber"]
    candidate: str | None = Field(default=None, max_length=CANDIDATE_MAX)
    sdpMid: str | None = Field(default=None, max_length=64)
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=512)


class SfuTile(_Msg):
    """One tile of the page's grid: whose video (``participantId``, ``source``) and its size in device
    pixels (CSS pixels x devicePixelRatio), from which the server picks the simulcast layer."""

    participantId: ParticipantIdStr
    source: Literal["camera", "screen"] = "camera"
    width: int = Field(default=0, ge=0, le=16384)
    height: int = Field(default=0, ge=0, le=16384)


class SfuView(_Msg):
    """What the page's grid shows now (its current page): the server subscribes the participant's
    subscriber connection to those videos only, at the layer each tile needs, and to the audio of the
    loudest few speakers. A participant that never sends ``sfu_view`` receives every stream."""

    type: Literal["sfu_view"] = "sfu_view"
    tiles: list[SfuTile] = Field(default_factory=list, max_length=64)


SfuClientMessage = Union[SfuPublish, SfuUnpublish, SfuAnswer, SfuCandidate, SfuView]
"""The client messages of group rooms on the SFU (``sfu_*``), handed to the room's SFU side."""
SFU_CLIENT_MESSAGES = (SfuPublish, SfuUnpublish, SfuAnswer, SfuCandidate, SfuView)

ClientMessage = Annotated[
    Union[Join, Knock, Offer, Answer, Candidate, Update, ChatSend, Stats, HandleKnock, Lock, Remove,
          MuteRequestSend, EndMeeting, Leave, Ping, Pong, SfuPublish, SfuUnpublish, SfuAnswer, SfuCandidate,
          SfuView, RecordingStart, RecordingStop, CaptionsStart, CaptionsStop, CaptionSend],
    Field(discriminator="type"),
]
CLIENT_TYPES = frozenset(
    ["join", "knock", "offer", "answer", "candidate", "update", "chat", "stats", "handle_knock", "lock", "remove",
     "mute_request", "end_meeting", "leave", "ping", "pong",
     "sfu_publish", "sfu_unpublish", "sfu_answer", "sfu_candidate", "sfu_view", "recording_start", "recording_stop",
     "captions_start", "captions_stop", "caption"]
)
HOST_ONLY = frozenset({"handle_knock", "lock", "remove", "mute_request", "end_meeting", "recording_start",
                       "recording_stop", "captions_start", "captions_stop"})
CAPTIONER_ONLY = frozenset({"caption"})
"""Messages only the captioner participant (role ``captioner``) may send."""

# ---------------------------------------------------------------------------------------------------------
# Server -> client


class Participant(_Msg):
    """A participant as other participants see it."""

    id: str
    role: str
    displayName: str | None = None
    audio: bool = False
    video: bool = False
    screen: bool = False
    sends: bool = True  # False for viewers: they receive only
    streams: Streams = Streams()
    joinedAt: str | None = None


class IceServer(_Msg):
    """An ``RTCIceServer`` as ``new RTCPeerConnection({iceServers})`` takes it."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


class RoomInfo(_Msg):
    roomName: str
    roomMode: str
    locked: bool
    maxSenders: int
    media: str = "mesh"  # mesh (peer-to-peer) | sfu
    chat: bool | None = None  # false: chat messages are refused (herewith.rooms.policy); left out when allowed
    maxParticipants: int | None = None  # the room policy's cap on people in the call, when it sets one


class Grants(_Msg):
    """What this participant may send (herewith.rooms.policy.MediaGrants): microphone, camera, screen; an
    offer, publish or update beyond them is refused with ``media_not_allowed``."""

    audio: bool = True
    video: bool = True
    screen: bool = True


class Precall(_Msg):
    """The room's pre-call defaults (not enforced): camera and microphone on when joining, and whether the
    page joins without waiting on the pre-call screen."""

    video: bool = True
    audio: bool = True
    autoJoin: bool = False


class ChatOut(_Msg):
    type: Literal["chat"] = "chat"
    from_: str = Field(alias="from")
    displayName: str | None = None
    text: str
    at: str

    model_config = ConfigDict(populate_by_name=True, frozen=True)


class RecordingInfo(_Msg):
    """The room's cloud recording now: ``state`` starting | recording, and its ``recordingId``."""

    state: str
    recordingId: str | None = None


class RecordingOptionsInfo(_Msg):
    """The meeting's recording options as the page needs them (never the destination): ``type`` none |
    local | cloud, ``startTrigger`` none | prompt | automatic | automatic-2nd-participant."""

    type: str
    startTrigger: str | None = None


class CaptionsInfo(_Msg):
    """Live transcription in this room: ``state`` starting | on | off, and the meeting's options:
    ``startTrigger`` none | manual | automatic | automatic-2nd-participant, ``liveCaptions`` (captions are
    shown in the room), ``language`` (or None: detected)."""

    state: str = "off"
    startTrigger: str = "none"
    liveCaptions: bool = False
    language: str | None = None


class Joined(_Msg):
    type: Literal["joined"] = "joined"
    participantId: str
    role: str
    room: RoomInfo
    participants: list[Participant]
    iceServers: list[IceServer]
    resumeToken: str
    chat: list[ChatOut] = []
    pingIntervalMs: int = 20_000
    recording: RecordingInfo | None = None  # the running cloud recording (left out when there is none)
    recordingOptions: RecordingOptionsInfo | None = None
    grants: Grants | None = None  # left out when the participant may send everything its role sends
    ejectAt: str | None = None  # when this participant will be removed (an eject timer), UTC
    captions: CaptionsInfo | None = None  # left out when the meeting has no live transcription


class RoomLocked(_Msg):
    type: Literal["room_locked"] = "room_locked"


class KnockPending(_Msg):
    type: Literal["knock_pending"] = "knock_pending"


class Knocked(_Msg):
    type: Literal["knocked"] = "knocked"
    participant: Participant


class KnockCancelled(_Msg):
    type: Literal["knock_cancelled"] = "knock_cancelled"
    participantId: str


class KnockHandled(_Msg):
    type: Literal["knock_handled"] = "knock_handled"
    participantId: str
    accepted: bool


class ParticipantJoined(_Msg):
    type: Literal["participant_joined"] = "participant_joined"
    participant: Participant


class ParticipantLeft(_Msg):
    type: Literal["participant_left"] = "participant_left"
    participantId: str
    reason: Literal["left", "disconnected", "removed", "ended"] = "left"


class ParticipantUpdated(_Msg):
    type: Literal["participant_updated"] = "participant_updated"
    participant: Participant


class RoomUpdated(_Msg):
    type: Literal["room_updated"] = "room_updated"
    locked: bool


class _Relayed(_Msg):
    model_config = ConfigDict(populate_by_name=True, frozen=True)
    from_: str = Field(alias="from")


class OfferOut(_Relayed):
    type: Literal["offer"] = "offer"
    sdp: str


class AnswerOut(_Relayed):
    type: Literal["answer"] = "answer"
    sdp: str


class CandidateOut(_Relayed):
    type: Literal["candidate"] = "candidate"
    candidate: str | None = None
    sdpMid: str | None = None
    sdpMLineIndex: int | None = None
    usernameFragment: str | None = None


class MuteRequestOut(_Relayed):
    type: Literal["mute_request"] = "mute_request"
    kind: Literal["audio", "video"]


class Removed(_Msg):
    type: Literal["removed"] = "removed"
    reason: Literal["host", "time_limit"] | None = None  # time_limit: the room's or the token's eject timer


class Ended(_Msg):
    type: Literal["ended"] = "ended"
    reason: Literal["ended", "deleted", "expired", "inactive"] = "ended"  # inactive: no media for too long


class RecordingStatus(_Msg):
    """A cloud recording's state, to everyone in the room (``unavailable``: to the asking host only, when no
    recorder is free or the meeting's ``recording.type`` is not ``cloud``). ``recording`` is sent once the
    recorder's first media chunk is on disk."""

    type: Literal["recording"] = "recording"
    state: Literal["starting", "recording", "stopped", "failed", "unavailable"]
    recordingId: str | None = None
    message: str | None = None


class CaptionsStatus(_Msg):
    """Live transcription's state, to everyone in the room (``unavailable`` and a ``failed`` start: to the
    asking host only when a host asked)."""

    type: Literal["captions"] = "captions"
    state: Literal["starting", "on", "stopped", "failed", "unavailable"]
    message: str | None = None


class CaptionOut(_Msg):
    """A live caption: what ``participantId`` (``displayName``) said in utterance ``utteranceId``; a partial
    (``final`` false) replaces the utterance's previous caption, a final one closes it. ``at``: ISO 8601 UTC,
    when the server relayed it."""

    type: Literal["caption"] = "caption"
    participantId: str
    displayName: str | None = None
    text: str
    final: bool
    utteranceId: str
    at: str


class Error(_Msg):
    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    ref: str | None = None  # the ``type`` of the offending message, when known


# -- SFU signaling, server -> client (group rooms on Janus)


class SfuPublished(_Msg):
    """Janus's answer to ``sfu_publish``."""

    type: Literal["sfu_published"] = "sfu_published"
    sdp: str


class SfuStream(_Msg):
    """One m-line of the subscriber connection: whose media it carries (``active`` false = unused slot)."""

    mid: str
    participantId: str | None = None
    kind: str  # audio | video
    source: str = "camera"  # camera | screen
    active: bool = True


class SfuOffer(_Msg):
    """Janus's offer for the subscriber connection; answer with ``sfu_answer``.

    ``subscription`` changes when the server started a new subscriber connection: drop the old one. ``sdp`` is up
    to :data:`SFU_SDP_MAX` characters (two m-lines per publisher received)."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_max_length=SFU_SDP_MAX)

    type: Literal["sfu_offer"] = "sfu_offer"
    sdp: str
    subscription: int
    streams: list[SfuStream]


class SfuRestart(_Msg):
    """The SFU lost this participant's connections (Janus restarted): close both peer connections and
    publish again; the server sends a fresh ``sfu_offer``."""

    type: Literal["sfu_restart"] = "sfu_restart"
    reason: str = "janus_restarted"


class ActiveSpeaker(_Msg):
    """Group rooms: the active speaker (``participantId``; the last one who spoke when nobody does now) and
    the loudest few speakers, loudest first (``speakers``: those whose audio the server forwards to pages
    that sent ``sfu_view``). From Janus VideoRoom's talking events (RTP audio-level header extension)."""

    type: Literal["active_speaker"] = "active_speaker"
    participantId: str | None = None
    speakers: list[str] = Field(default_factory=list)


ServerMessage = Annotated[
    Union[Joined, RoomLocked, KnockPending, Knocked, KnockCancelled, KnockHandled, ParticipantJoined,
          ParticipantLeft, ParticipantUpdated, RoomUpdated, OfferOut, AnswerOut, CandidateOut, ChatOut,
          MuteRequestOut, Removed, Ended, Error, Ping, Pong, SfuPublished, SfuOffer, SfuRestart, RecordingStatus,
          ActiveSpeaker, CaptionsStatus, CaptionOut],
    Field(discriminator="type"),
]

_client_adapter: TypeAdapter[Any] = TypeAdapter(ClientMessage)
_server_adapter: TypeAdapter[Any] = TypeAdapter(ServerMessage)


def parse_client_message(text: str | bytes) -> ClientMessage:
    """Parse one client frame into its message model. Raises :class:`ProtocolError` (``malformed``).

    The error message names the first offending field, e.g. ``"displayName: must not contain ..."``. A NUL or
    an unpaired surrogate in any string of the frame, keys included, is refused whatever the field
    (:func:`herewith.kit.text.find_bad_text`: ``"metadata: must not contain NUL (U+0000)"``), before the
    message is built: nothing of it reaches a room, a log or the database.
    """
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(ErrorCode.MALFORMED, "frame is not valid JSON") from None
    if not isinstance(raw, dict):
        raise ProtocolError(ErrorCode.MALFORMED, "frame must be a JSON object")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        raise ProtocolError(ErrorCode.MALFORMED, f"unknown message type: {str(kind)[:40]!r}")
    if may_hold_bad_text(text):
        bad = find_bad_text(raw, root=kind)
        if bad is not None:
            raise ProtocolError(ErrorCode.MALFORMED, f"{bad[0]}: {bad[1]}")
    try:
        return _client_adapter.validate_python(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ())[1:]) or kind
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ").removeprefix(loc + " ")
        raise ProtocolError(ErrorCode.MALFORMED, f"{loc}: {msg}") from None


def parse_server_message(text: str | bytes) -> Any:
    """Parse one server frame (for Python clients and tests). Raises ``pydantic.ValidationError``."""
    return _server_adapter.validate_json(text)


def dump(message: BaseModel) -> str:
    """Compact JSON of a message, with ``from`` spelled as on the wire and ``None`` fields left out."""
    return message.model_dump_json(by_alias=True, exclude_none=True)


def error(code: ErrorCode, message: str, ref: str | None = None) -> Error:
    return Error(code=code, message=message, ref=ref)
