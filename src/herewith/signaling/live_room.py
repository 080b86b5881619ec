"""The live room: presence, roles, knocking, lock, removal, mute requests and ending, as a state machine.

A :class:`LiveRoom` holds the people connected to one room right now. It never touches a socket or
Starlette and is only reached through a router (:mod:`herewith.signaling.router`): the router hands it an
:class:`Outbox` per connection (the transport's message sink: ``send_text`` enqueues a frame, ``close``
ends the connection after the queued frames) and calls :meth:`LiveRoom.handle` with parsed messages.
Rules come from CONTRACT.md "Room roles" and "Meetings":

- roles: ``host`` / ``viewer`` from a valid roomKey, otherwise ``visitor``; a visitor admitted after knocking
  is ``granted_visitor``. Hosts may lock/unlock, admit/reject knockers, remove, ask to mute, end the meeting.
- a locked room (``isLocked``, ``templateType=viewerMode``, or locked by a host): visitors get ``room_locked``,
  may ``knock`` and wait until a host answers. RoomKey holders enter directly.
- ``roomMode`` normal: a peer-to-peer mesh of at most ``max_senders`` (4) sending participants; viewers
  receive only and any SDP of theirs that would send media is refused (:func:`sdp_sends_media`).
- ``roomMode`` group on the SFU: the room tells its :class:`SfuRoom` who was admitted and who left, and
  hands it the ``sfu_*`` messages; the SFU side (:mod:`herewith.media.group_rooms`) implements it.
- the room's policy (:mod:`herewith.rooms.policy`, CONTRACT.md "Another vendor's room options"), in mesh
  and SFU rooms alike: a private room refuses visitors (or, with knocking, lets them knock); ``member``
  (a participant token) enters directly; at most ``max_participants``; eject timers per member; the call
  ends at expiry (``eject_at_expiry``) or after no media for a while; each member's :class:`MediaGrants`
  (``joined.grants``) bound what its SDP, SFU publish and ``update`` may send (:func:`sdp_media_violation`);
  a member allowed nothing is receive-only like a viewer (no Janus publish token); chat may be off.

Usage::

    room = LiveRoom(ref, config, room_events)
    status = await room.join(participant_id, outbox, join_msg, role="visitor")   # "joined" | "lobby" | "refused"
    await room.handle(participant_id, parsed_message)
    await room.disconnect(participant_id)
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from pydantic import BaseModel

from herewith.kit import metrics
from herewith.kit.sdp import parse_sdp
from herewith.kit.time import format_utc
from herewith.rooms.policy import DEFAULT_POLICY, MediaGrants, RoomPolicy, TokenLimits
from herewith.signaling import protocol as p
from herewith.rooms.events import ParticipantInfo, RoomEvent, RoomEventType

log = structlog.get_logger(__name__)

CHAT_HISTORY = 50
DEPARTED_CAPTION_SECONDS = 30.0  # a final caption of someone who left this long ago is still kept
DEPARTED_KEPT = 256  # departed participants remembered for that, per room

# WebSocket close codes the page understands (4000 + the HTTP status it stands for).
CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008  # repeated abuse
CLOSE_ENDED = 4001  # ended by a host, deleted or expired
CLOSE_REMOVED = 4003  # removed by a host, or knock rejected
CLOSE_NOT_FOUND = 4404
CLOSE_GONE = 4410
CLOSE_FULL = 4409
CLOSE_TOKEN_REQUIRED = 4401  # a private room joined without a participant token
CLOSE_NOT_OPEN = 4425  # the room opens later (its policy's not-before)
#: How often a room with timed rules (expiry ejection, no-activity end) looks at the clock, in seconds.
POLICY_TICK_SECONDS = 0.5

#: Roles that take no place in a room's limits: the cloud recorder and the live captioner (never shown,
#: send no media).
NOT_COUNTED_ROLES = frozenset({"recorder", "captioner"})
CAPTIONER = "captioner"


class Outbox(Protocol):
    """One connection as the room sees it (the transport's :class:`~herewith.signaling.router.MessageSink`).

    ``send_text(text)`` queues one JSON frame; ``close(code, reason)`` closes the connection after the
    frames queued before it (``code``: a WebSocket close code, see ``CLOSE_*``). Both are non-blocking and
    never raise."""

    def send_text(self, text: str) -> None: ...

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None: ...


class TokenClaims(TokenLimits, Protocol):
    """A verified participant token as the room reads it (:class:`herewith.auth.room_keys.RoomKeyClaims`):
    defaults for the join's display name, external id and metadata, and the limits of :class:`TokenLimits`."""

    @property
    def name(self) -> str | None: ...

    @property
    def external_id(self) -> str | None: ...

    @property
    def meta(self) -> str | None: ...


def _valid_name(value: str | None) -> bool:
    try:
        return p.validate_display_name(value) is not None
    except ValueError:
        return False


def _valid_metadata(value: str | None) -> bool:
    try:
        return p.validate_metadata(value) is not None
    except ValueError:
        return False


def _valid_external_id(value: str | None) -> bool:
    try:
        return p.validate_external_id(value) is not None
    except ValueError:
        return False


class RoomRefLike(Protocol):
    """What a live room reads of its meeting (:class:`herewith.rooms.service.RoomRef` has it): ids, the
    room name with its leading slash, ``room_mode`` (normal | group), whether it starts locked, and
    ``end_date`` (aware UTC)."""

    @property
    def meeting_id(self) -> str: ...

    @property
    def organization_id(self) -> str: ...

    @property
    def room_name(self) -> str: ...

    @property
    def room_mode(self) -> str: ...

    @property
    def is_locked(self) -> bool: ...

    @property
    def end_date(self) -> datetime: ...


class SfuMember(Protocol):
    """A participant in the call as the SFU sees it: its id, its role, whether its role sends media (only those get
    a publish token), its connection (SFU answers and errors go straight to it), and whether it reports its
    grid (``sfu_view``: then it receives only what the grid shows)."""

    @property
    def id(self) -> str: ...

    @property
    def grid(self) -> bool: ...

    @property
    def role(self) -> str: ...

    @property
    def sends(self) -> bool: ...

    @property
    def outbox(self) -> Outbox: ...


class SfuRoom(Protocol):
    """The SFU side of one group room (``RoomConfig.sfu``), as the live room drives it.

    ``admitted(member)``: the member entered the call (give it an SFU connection); ``handle(member, msg)``:
    one ``sfu_*`` message of a member in the call; ``left(participant_id, reason)``: the member left the
    call (``reason``: left | disconnected | removed | ended). None of them raises for a Janus failure: the
    participant gets an ``error`` frame instead. :class:`herewith.media.group_rooms.GroupRoom` implements it.
    """

    async def admitted(self, member: SfuMember) -> None: ...

    async def handle(self, member: SfuMember, msg: p.SfuClientMessage) -> None: ...

    async def left(self, participant_id: str, reason: str) -> None: ...


class RecordingControl(Protocol):
    """Cloud recording as a live room drives it (``RoomConfig.recording``;
    :class:`herewith.recordings.control.RecordingControl` implements it).

    ``start(room_ref, requested_by, trigger)``: start recording the room (``requested_by``: the host's
    participantId, None for a trigger; ``trigger``: manual | prompt | automatic | automatic-2nd-participant);
    the recording id, or None when unavailable (the host was told). ``stop(room_ref, reason)``: stop it (a
    no-op when none runs). ``state(room_name)``: ``{"state", "recordingId"}`` of the running recording or
    None. ``options(room_ref)``: ``{"type", "startTrigger"}`` of the meeting (never the destination).
    ``attach(room_name, notify)`` / ``detach(room_name, notify)``: where the room's ``recording`` messages go:
    ``notify(message, to)`` with ``to`` a participantId, ``"@hosts"`` or None (everyone). Starting and stopping
    may wait for a recorder: the room runs them as tasks, never inline."""

    async def start(self, room_ref: RoomRefLike, requested_by: str | None, trigger: str) -> str | None: ...

    async def stop(self, room_ref: RoomRefLike, reason: str) -> None: ...

    def state(self, room_name: str) -> dict[str, Any] | None: ...

    async def options(self, room_ref: RoomRefLike) -> dict[str, Any] | None: ...

    def attach(self, room_name: str, notify: Callable[[dict[str, Any], str | None], None]) -> None: ...

    def detach(self, room_name: str, notify: Callable[[dict[str, Any], str | None], None]) -> None: ...


class CaptionControl(Protocol):
    """Live transcription and captions as a live room drives it (``RoomConfig.captions``;
    :class:`herewith.captions.control.CaptionControl` implements it).

    ``options(room_ref)``: ``{"startTrigger", "liveCaptions", "language"}`` of the meeting's
    ``liveTranscription``, or None when it has none. ``state(room_name)``: ``"starting"`` | ``"on"`` or None.
    ``start(room_ref, requested_by, trigger)`` / ``stop(room_ref, reason)``: start the room's captioner
    (``requested_by``: the host's participantId, None for a trigger) or stop it; both may take seconds: the room
    runs them as tasks. ``caption(room_ref, participant_id, display_name, text, utterance_id, at)``: one final
    caption for the stored live transcript (never blocks). ``attach(room_name, notify)`` /
    ``detach(room_name, notify)``: where the room's ``captions`` messages go: ``notify(message, to)`` with ``to``
    a participantId, ``"@hosts"`` or None (everyone)."""

    async def options(self, room_ref: RoomRefLike) -> dict[str, Any] | None: ...

    def state(self, room_name: str) -> str | None: ...

    async def start(self, room_ref: RoomRefLike, requested_by: str | None, trigger: str) -> None: ...

    async def stop(self, room_ref: RoomRefLike, reason: str) -> None: ...

    def caption(self, room_ref: RoomRefLike, participant_id: str, display_name: str | None, text: str,
                utterance_id: str, at: datetime) -> None: ...

    def attach(self, room_name: str, notify: Callable[[dict[str, Any], str | None], None]) -> None: ...

    def detach(self, room_name: str, notify: Callable[[dict[str, Any], str | None], None]) -> None: ...


@dataclass
class RoomConfig:
    """Limits and helpers a room needs from settings.

    ``max_senders``: sending participants (normal rooms: 4); ``max_viewers``: receive-only participants;
    ``ice_servers(participant_id)`` returns RTCIceServer dicts; ``now()`` aware UTC; ``ping_interval_ms``:
    the keepalive interval the page is told; ``media``: ``mesh`` or ``sfu``; ``sfu``: the SFU side of a
    group room on the SFU (None for mesh rooms); ``recording``: cloud recording (None: hosts asking to record
    are told ``unavailable``); ``captions``: live transcription (None: hosts asking are told ``unavailable``).
    """

    max_senders: int
    max_viewers: int
    ice_servers: Callable[[str], list[dict[str, Any]]]
    now: Callable[[], datetime]
    ping_interval_ms: int = 20_000
    media: str = "mesh"
    sfu: SfuRoom | None = None
    recording: RecordingControl | None = None
    captions: CaptionControl | None = None


@dataclass
class Member:
    id: str
    role: str
    outbox: Outbox
    display_name: str | None = None
    external_id: str | None = None
    metadata: str | None = None
    user_agent: str | None = None
    device_id: str | None = None
    audio: bool = False
    video: bool = False
    screen: bool = False
    streams: p.Streams = field(default_factory=p.Streams)
    joined_at: datetime | None = None
    resume_token: str = ""
    # In the room (it counts for capacity) but not told yet: its join is being recorded.
    pending: bool = False
    # What the room's policy and the participant's token let it send (herewith.rooms.policy).
    grants: MediaGrants = field(default_factory=MediaGrants)
    eject_after: int | None = None  # seconds after joining when it is removed (policy or token)
    eject_timer: asyncio.TimerHandle | None = None
    grid: bool = False  # it reports what its grid shows (``sfu_view``; group rooms)

    @property
    def sends(self) -> bool:
        """The role sends media and the room lets it send something (``owner_only_broadcast`` makes every
        non-host receive-only, like a viewer)."""
        return self.role in p.ROLES_SENDING and self.grants.any

    @property
    def is_host(self) -> bool:
        return self.role == "host"

    def public(self) -> p.Participant:
        return p.Participant(
            id=self.id, role=self.role, displayName=self.display_name, audio=self.audio, video=self.video,
            screen=self.screen, sends=self.sends, streams=self.streams,
            joinedAt=format_utc(self.joined_at) if self.joined_at else None,
        )

    def info(self) -> ParticipantInfo:
        return ParticipantInfo(
            participant_id=self.id, role_name=self.role, display_name=self.display_name,
            external_id=self.external_id, metadata=self.metadata, user_agent=self.user_agent,
            device_id=self.device_id,
        )


def sdp_sends_media(sdp: str) -> bool:
    """The viewer rule (CONTRACT.md "Room roles": viewers receive and never send): True when an offer or
    answer may send media, so a viewer's is refused.

    Every media m-line counts, whatever its tracks (``a=msid``/``a=ssrc``) and line endings: one that is
    not rejected and whose direction is ``sendrecv`` or ``sendonly`` (written, or by default) sends, and
    so does a text with mixed line endings (:meth:`herewith.kit.sdp.SessionDescription.may_send_media`).
    """
    return parse_sdp(sdp).may_send_media()


def sdp_media_violation(sdp: str, grants: MediaGrants, sources: dict[str, str] | None = None) -> str | None:
    """Why an offer or answer (peer-to-peer) or a publish (SFU) sends media that ``grants`` forbid, or None.

    Media m-lines that may send (:attr:`herewith.kit.sdp.MediaSection.may_send`, the viewer rule's strict
    reading) are counted by kind: an audio one needs ``grants.audio``; video (and any unknown media kind)
    lines are screen shares when ``sources`` (the SFU publish's ``mid -> camera | screen``) says so, else
    cameras. In a peer-to-peer offer nothing says which video line is the screen: when only one of camera
    and screen is allowed, one sending video line is let through as that one, and a second is refused.
    A text with mixed line endings (which a browser may read differently) is refused unless everything is
    allowed."""
    desc = parse_sdp(sdp)
    if grants.audio and grants.video and grants.screen:
        return None
    if desc.mixed_line_endings:
        return "SDP with mixed line endings is not accepted here"
    sending = [m for m in desc.media if m.may_send]
    if not grants.audio and any(m.kind == "audio" for m in sending):
        return "You may not send audio in this room"
    video = [m for m in sending if m.kind != "audio"]
    if sources is not None:
        screens = sum(1 for m in video if sources.get(m.mid or "") == "screen")
        cameras = len(video) - screens
    else:
        screens, cameras = 0, len(video)
        if cameras and not grants.video and grants.screen:
            screens, cameras = 1, cameras - 1  # the one video line may be the screen
    if cameras and not grants.video:
        return "You may not send video in this room" if not grants.screen else "You may only share your screen in this room"
    if screens and not grants.screen:
        return "Screen sharing is not allowed in this room"
    if sources is None and cameras > 1 and not grants.screen:
        return "Screen sharing is not allowed in this room"
    return None


class RoomEventPublisher(Protocol):
    """Where a live room's events go (:class:`herewith.rooms.events.RoomEvents`)."""

    async def publish(self, event: RoomEvent) -> None:
        """Queue the event; returns at once."""

    async def publish_and_wait(self, event: RoomEvent, timeout: float = 10.0) -> bool:
        """Queue the event and wait until it is recorded (at most ``timeout`` seconds)."""


class LiveRoom:
    """The state of one live room. All methods run on one event loop; state changes happen before awaits."""

    def __init__(self, ref: RoomRefLike, config: RoomConfig, events: RoomEventPublisher) -> None:
        self.ref = ref
        self.config = config
        self._events = events
        self.locked = bool(ref.is_locked)
        self.members: dict[str, Member] = {}  # in the call
        self.lobby: dict[str, Member] = {}  # told the room is locked; not knocking yet
        self.knockers: dict[str, Member] = {}  # knocking, waiting for a host
        self.granted: dict[str, str] = {}  # resume token -> role, for reconnects of admitted knockers
        self.chat: deque[p.ChatOut] = deque(maxlen=CHAT_HISTORY)
        self.ended = False
        self._recording_options: dict[str, Any] | None = None
        self._recording_options_loaded = False
        self._recording_attached = False
        self._captions_options: dict[str, Any] | None = None
        self._captions_options_loaded = False
        self._captions_attached = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.policy: RoomPolicy = getattr(ref, "policy", None) or DEFAULT_POLICY
        self._last_activity: datetime | None = None
        self._watch: asyncio.Task[None] | None = None
        # participants who left in the last DEPARTED_CAPTION_SECONDS: id -> (display name, when, monotonic s), so
        # that the final caption of what they said just before leaving (decoded after) is still kept
        self._departed: dict[str, tuple[str | None, float]] = {}

    # ----------------------------------------------------------------------------------------------- queries
    @property
    def room_name(self) -> str:
        return self.ref.room_name

    def is_empty(self) -> bool:
        return not (self.members or self.lobby or self.knockers)

    def senders(self) -> int:
        return sum(1 for m in self.members.values() if m.sends)

    def connection_count(self) -> int:
        return len(self.members) + len(self.lobby) + len(self.knockers)

    # ------------------------------------------------------------------------------------------ delivery
    def _send(self, member: Member, message: BaseModel) -> None:
        member.outbox.send_text(p.dump(message))

    def _broadcast(self, message: BaseModel, exclude: str | None = None, only: Callable[[Member], bool] | None = None) -> None:
        text = p.dump(message)
        for m in list(self.members.values()):
            if m.id != exclude and not m.pending and (only is None or only(m)):
                m.outbox.send_text(text)

    def _error(self, member: Member, code: p.ErrorCode, message: str, ref: str | None = None) -> None:
        self._send(member, p.error(code, message, ref))

    async def _event(self, kind: RoomEventType, member: Member, stats: dict[str, Any] | None = None,
                     durable: bool = False) -> None:
        event = RoomEvent(
            type=kind, room_name=self.ref.room_name, meeting_id=self.ref.meeting_id,
            organization_id=self.ref.organization_id, participant=member.info(), at=self.config.now(),
            # Stats samples go only to the insights tables: no need for the room's member list (400/s at 2,000
            # participants, and what a busy room allocates here is what the collector has to walk later).
            participants=() if stats is not None else tuple(m.info() for m in self.members.values()), stats=stats,
        )
        try:
            if durable:
                await self._events.publish_and_wait(event)
            else:
                await self._events.publish(event)
        except Exception:  # noqa: BLE001 - a sink must never break the room
            log.exception("room_event_sink_failed", type=kind)

    # ---------------------------------------------------------------------------------------------- join
    async def join(self, participant_id: str, outbox: Outbox, msg: p.Join, role: str,
                   token: TokenClaims | None = None) -> str:
        """Enter the room as ``role`` (from the roomKey or participant token, or ``visitor``); ``token``: the
        verified participant token's claims, if any (name, external id and metadata when the join gives
        none; media limits and eject timer with the room's policy).

        Returns ``"joined"`` (``joined`` sent), ``"lobby"`` (``room_locked`` sent: the room is locked, or
        private with knocking allowed, and the visitor may knock) or ``"refused"`` (an ``error`` was sent and
        the outbox closed: ended room, full room, private room without a token).
        """
        member = Member(
            id=participant_id, role=role, outbox=outbox,
            display_name=msg.displayName or (p.validate_display_name(token.name) if token and _valid_name(token.name) else None),
            external_id=msg.externalId or (token.external_id if token and _valid_external_id(token.external_id) else None),
            metadata=msg.metadata or (token.meta if token and _valid_metadata(token.meta) else None),
            user_agent=msg.userAgent, device_id=msg.deviceId, audio=msg.audio, video=msg.video, grid=msg.grid,
        )
        member.grants = self.policy.media_grants(role == "host", token)
        member.eject_after = self.policy.eject_after(token)
        if self.ended:
            self._error(member, p.ErrorCode.ROOM_GONE, "This meeting has ended")
            outbox.close(CLOSE_GONE, "ended")
            return "refused"
        if role == "visitor" and msg.resumeToken and msg.resumeToken in self.granted:
            member.role = self.granted[msg.resumeToken]
            member.resume_token = msg.resumeToken
        elif role == "visitor" and self.policy.private and not self.policy.request_to_join:
            self._error(member, p.ErrorCode.TOKEN_REQUIRED, "This room is private: join with a token")
            outbox.close(CLOSE_TOKEN_REQUIRED, "token required")
            return "refused"
        elif role == "visitor" and (self.locked or self.policy.private):
            self.lobby[participant_id] = member
            self._send(member, p.RoomLocked())
            return "lobby"
        return await self._admit(member)

    def _full_reason(self, member: Member) -> str | None:
        if member.role in NOT_COUNTED_ROLES:  # a recorder takes no one's place (the recording interface, 1)
            return None
        cap = self.policy.max_participants
        if cap and cap > 0 and sum(1 for m in self.members.values() if m.role not in NOT_COUNTED_ROLES) >= cap:
            return f"This room is full: at most {cap} people can be in it"
        if member.sends and self.senders() >= self.config.max_senders:
            return f"This room is full: at most {self.config.max_senders} people can take part"
        viewers = sum(1 for m in self.members.values() if not m.sends and m.role not in NOT_COUNTED_ROLES)
        if not member.sends and viewers >= self.config.max_viewers:
            return f"This room is full: at most {self.config.max_viewers} viewers"
        return None

    async def _admit(self, member: Member) -> str:
        full = self._full_reason(member)
        if full:
            self._error(member, p.ErrorCode.ROOM_FULL, full)
            member.outbox.close(CLOSE_FULL, "room full")
            return "refused"
        if not member.sends:
            member.audio = member.video = False
        member.audio = member.audio and member.grants.audio
        member.video = member.video and member.grants.video
        member.joined_at = self.config.now()
        member.resume_token = member.resume_token or secrets.token_urlsafe(18)
        if member.role == "granted_visitor":
            self.granted[member.resume_token] = member.role
        # The join is recorded (room session, participant row, room.client.joined in the webhook outbox) before
        # anyone is told: a crash after ``joined`` was sent can no longer lose its event. Meanwhile the member
        # holds its place (capacity) but hears nothing; what changed meanwhile is in its ``joined``.
        member.pending = True
        self.members[member.id] = member
        await self._event("participant.joined", member, durable=True)
        if self.members.get(member.id) is not member:
            return "refused"  # gone while its join was recorded (disconnected, or the room ended)
        member.pending = False
        metrics.PARTICIPANTS_JOINED.labels(self.ref.room_mode, member.role).inc()
        recording, recording_options = await self._recording_for_joined()
        captions = await self._captions_for_joined()
        if self.members.get(member.id) is not member:
            return "refused"
        eject_at = None
        if member.eject_after:
            eject_at = format_utc(member.joined_at + timedelta(seconds=member.eject_after))
            member.eject_timer = asyncio.get_running_loop().call_later(
                member.eject_after, lambda: self._spawn(self._eject(member.id, "time_limit")))
        grants = member.grants
        policy = self.policy
        self._send(member, p.Joined(
            participantId=member.id, role=member.role,
            room=p.RoomInfo(roomName=self.ref.room_name, roomMode=self.ref.room_mode, locked=self.locked,
                            maxSenders=self.config.max_senders, media=self.config.media, chat=None if policy.chat else False,
                            maxParticipants=policy.max_participants or None),
            participants=[m.public() for m in self.members.values() if m is not member and not m.pending],
            iceServers=[p.IceServer(**s) for s in self.config.ice_servers(member.id)],
            resumeToken=member.resume_token, chat=list(self.chat), pingIntervalMs=self.config.ping_interval_ms,
            recording=recording, recordingOptions=recording_options, captions=captions,
            grants=None if grants == MediaGrants() else p.Grants(audio=grants.audio, video=grants.video,
                                                                  screen=grants.screen),
            ejectAt=eject_at,
        ))
        self._start_watch()
        self._broadcast(p.ParticipantJoined(participant=member.public()), exclude=member.id)
        if self.config.sfu is not None:  # an SFU connection (and a publish token if it sends) for the newcomer
            await self.config.sfu.admitted(member)
        if member.is_host:
            for k in self.knockers.values():  # a host arriving sees who is waiting
                self._send(member, p.Knocked(participant=k.public()))
        return "joined"

    # ------------------------------------------------------------------------------------------ messages
    async def handle(self, participant_id: str, msg: p.ClientMessage) -> None:
        """Apply one parsed client message from ``participant_id`` (joined, knocking or in the lobby);
        messages of someone no longer here are ignored. Errors go to the sender as ``error`` frames."""
        kind = msg.type
        member = self.members.get(participant_id)
        if member is None:
            waiting = self.lobby.get(participant_id) or self.knockers.get(participant_id)
            if waiting is None:
                return
            if kind == "knock":
                await self._knock(waiting)
            elif kind == "leave":
                await self.disconnect(participant_id, "left")
            elif kind == "ping":
                self._send(waiting, p.Pong())
            elif kind != "pong":
                self._error(waiting, p.ErrorCode.NOT_JOINED, "Wait until a host lets you in", kind)
            return
        if isinstance(msg, p.SFU_CLIENT_MESSAGES):  # SFU signaling goes to the SFU side of group rooms
            if self.config.sfu is None:
                self._error(member, p.ErrorCode.MALFORMED, f"{kind} is only valid in rooms on the SFU", kind)
                return
            if isinstance(msg, p.SfuPublish) and member.sends:
                # The room's media rules, before Janus sees the offer (a member that sends nothing has no
                # publish token: Janus itself refuses its publish).
                why = sdp_media_violation(msg.sdp, member.grants, dict(msg.sources))
                if why is not None:
                    self._error(member, p.ErrorCode.MEDIA_NOT_ALLOWED, why, kind)
                    return
            await self.config.sfu.handle(member, msg)
            return
        if kind in p.HOST_ONLY and not member.is_host:
            self._error(member, p.ErrorCode.FORBIDDEN, f"Only hosts may send {kind}", kind)
            return
        if kind in p.CAPTIONER_ONLY and member.role != CAPTIONER:
            self._error(member, p.ErrorCode.FORBIDDEN, f"Only the captioner may send {kind}", kind)
            return
        handler = getattr(self, "_on_" + kind, None)
        if handler is None:
            self._error(member, p.ErrorCode.MALFORMED, f"{kind} is not valid now", kind)
            return
        await handler(member, msg)

    async def _on_join(self, member: Member, msg: p.Join) -> None:
        self._error(member, p.ErrorCode.ALREADY_JOINED, "Already joined", "join")

    async def _on_knock(self, member: Member, msg: p.Knock) -> None:
        self._error(member, p.ErrorCode.ALREADY_JOINED, "Already in the room", "knock")

    async def _on_ping(self, member: Member, msg: p.Ping) -> None:
        self._send(member, p.Pong())

    async def _on_pong(self, member: Member, msg: p.Pong) -> None:
        return None

    async def _on_leave(self, member: Member, msg: p.Leave) -> None:
        await self.disconnect(member.id, "left")
        member.outbox.close(CLOSE_NORMAL, "left")

    def _target(self, member: Member, target_id: str, ref: str) -> Member | None:
        target = self.members.get(target_id)
        if target is None or target_id == member.id:
            self._error(member, p.ErrorCode.UNKNOWN_PARTICIPANT, f"No participant {target_id} in this room", ref)
            return None
        return target

    async def _relay_sdp(self, member: Member, msg: p.Offer | p.Answer) -> None:
        target = self._target(member, msg.to, msg.type)
        if target is None:
            return
        if not member.sends and sdp_sends_media(msg.sdp):
            if member.role in p.ROLES_SENDING:  # a sending role the room's policy keeps from sending
                self._error(member, p.ErrorCode.MEDIA_NOT_ALLOWED, "Only hosts may send media in this room", msg.type)
            else:
                self._error(member, p.ErrorCode.VIEWER_CANNOT_SEND, "Viewers receive media and never send it", msg.type)
            return
        if member.sends:
            why = sdp_media_violation(msg.sdp, member.grants)
            if why is not None:
                self._error(member, p.ErrorCode.MEDIA_NOT_ALLOWED, why, msg.type)
                return
        if not target.sends and not member.sends:
            self._error(member, p.ErrorCode.FORBIDDEN, "Viewers do not connect to each other", msg.type)
            return
        out = p.OfferOut if msg.type == "offer" else p.AnswerOut
        self._send(target, out(from_=member.id, sdp=msg.sdp))

    _on_offer = _relay_sdp
    _on_answer = _relay_sdp

    async def _on_candidate(self, member: Member, msg: p.Candidate) -> None:
        target = self._target(member, msg.to, "candidate")
        if target is None:
            return
        self._send(target, p.CandidateOut(from_=member.id, candidate=msg.candidate, sdpMid=msg.sdpMid,
                                          sdpMLineIndex=msg.sdpMLineIndex, usernameFragment=msg.usernameFragment))

    async def _on_update(self, member: Member, msg: p.Update) -> None:
        g = member.grants
        for on, allowed, what in ((msg.audio, g.audio, "audio"), (msg.video, g.video, "video"),
                                  (msg.screen, g.screen, "screen sharing")):
            if on and member.role in p.ROLES_SENDING and not allowed:  # viewers' flags are ignored below
                self._error(member, p.ErrorCode.MEDIA_NOT_ALLOWED, f"You may not use {what} in this room", "update")
                return
        if member.sends:
            self._note_activity()  # the no-activity clock starts at this change, not at the last tick
            if msg.audio is not None:
                member.audio = msg.audio
            if msg.video is not None:
                member.video = msg.video
            if msg.screen is not None:
                member.screen = msg.screen
            if msg.streams is not None:
                member.streams = msg.streams
        if msg.displayName is not None:
            member.display_name = msg.displayName
        self._broadcast(p.ParticipantUpdated(participant=member.public()))

    async def _on_chat(self, member: Member, msg: p.ChatSend) -> None:
        if not self.policy.chat:
            self._error(member, p.ErrorCode.CHAT_DISABLED, "Chat is turned off in this room", "chat")
            return
        out = p.ChatOut(from_=member.id, displayName=member.display_name, text=msg.text,
                        at=format_utc(self.config.now()))
        self.chat.append(out)
        self._broadcast(out)

    async def _on_stats(self, member: Member, msg: p.Stats) -> None:
        await self._event("participant.stats", member, stats={
            "packetLossSend": msg.packetLossSend, "packetLossRecv": msg.packetLossRecv,
            "bitrateSend": msg.bitrateSend, "bitrateRecv": msg.bitrateRecv, "sampleRateMs": msg.sampleRateMs,
        })

    # ------------------------------------------------------------------------------------- host controls
    async def _on_lock(self, member: Member, msg: p.Lock) -> None:
        self.locked = msg.locked
        self._broadcast(p.RoomUpdated(locked=self.locked))
        # Unlocking lets everyone waiting in; in a private room each knock still needs a host's answer.
        if not self.locked and not self.policy.private:
            for waiting in list(self.knockers.values()) + list(self.lobby.values()):
                self.knockers.pop(waiting.id, None)
                self.lobby.pop(waiting.id, None)
                self._broadcast(p.KnockHandled(participantId=waiting.id, accepted=True), only=lambda m: m.is_host)
                waiting.role = "granted_visitor"
                await self._admit(waiting)

    async def _on_handle_knock(self, member: Member, msg: p.HandleKnock) -> None:
        knocker = self.knockers.get(msg.participantId)
        if knocker is None:
            self._error(member, p.ErrorCode.UNKNOWN_PARTICIPANT, f"No one knocking as {msg.participantId}",
                        "handle_knock")
            return
        del self.knockers[knocker.id]
        handled = p.KnockHandled(participantId=knocker.id, accepted=msg.accept)
        self._broadcast(handled, only=lambda m: m.is_host)
        if msg.accept:
            knocker.role = "granted_visitor"
            await self._admit(knocker)
        else:
            self._send(knocker, handled)
            self._error(knocker, p.ErrorCode.KNOCK_REJECTED, "A host declined your request to join")
            knocker.outbox.close(CLOSE_REMOVED, "rejected")

    async def _on_remove(self, member: Member, msg: p.Remove) -> None:
        target = self._target(member, msg.participantId, "remove")
        if target is None:
            return
        await self._eject(target.id, "host")

    async def _eject(self, participant_id: str, reason: str) -> None:
        """Remove a member from the call (a host's ``remove``, or its eject timer: ``time_limit``)."""
        target = self.members.get(participant_id)
        if target is None:
            return
        self._send(target, p.Removed(reason=reason))  # type: ignore[arg-type]
        target.outbox.close(CLOSE_REMOVED, "removed")
        await self.disconnect(target.id, "removed")

    # ------------------------------------------------------------------------------------- timed rules
    def _start_watch(self) -> None:
        """Start the room's clock watch when its policy has timed rules (ejection at expiry, no-activity
        end) and none runs; it stops by itself when the room is empty or ended."""
        policy = self.policy
        timed = (policy.eject_at_expiry and policy.expires_at is not None) or bool(
            policy.end_after_no_activity_seconds and policy.end_after_no_activity_seconds > 0)
        if not timed or (self._watch is not None and not self._watch.done()):
            return
        self._last_activity = self.config.now()
        self._watch = asyncio.ensure_future(self._watch_loop())
        self._tasks.add(self._watch)
        self._watch.add_done_callback(self._tasks.discard)

    def _note_activity(self) -> None:
        """Before a change of who sends what: if media is on until now, the no-activity clock restarts now (the
        watch samples it only every POLICY_TICK_SECONDS, and a mute between two ticks counted from the earlier)."""
        if self._last_activity is not None and self._media_on():
            self._last_activity = self.config.now()

    def _media_on(self) -> bool:
        """Someone in the call has a microphone, camera or screen on (as its page reports it)."""
        return any(m.audio or m.video or m.screen for m in self.members.values()
                   if not m.pending and m.role not in NOT_COUNTED_ROLES)

    async def _watch_loop(self) -> None:
        policy = self.policy
        idle_limit = policy.end_after_no_activity_seconds if (policy.end_after_no_activity_seconds or 0) > 0 else None
        try:
            while not self.ended and self.members:
                await asyncio.sleep(POLICY_TICK_SECONDS)
                now = self.config.now()
                if policy.eject_at_expiry and policy.expires_at is not None and now >= policy.expires_at:
                    log.info("room_expired_ejecting", room_name=self.ref.room_name)
                    await self.end("expired")
                    return
                if idle_limit is None:
                    continue
                if self._media_on() or self._last_activity is None:
                    self._last_activity = now
                elif (now - self._last_activity).total_seconds() >= idle_limit:
                    log.info("room_inactive_ending", room_name=self.ref.room_name, seconds=idle_limit)
                    await self.end("inactive")
                    return
        except Exception:  # noqa: BLE001 - a broken timer must never break the room
            log.exception("room_policy_watch_failed", room_name=self.ref.room_name)

    async def _on_mute_request(self, member: Member, msg: p.MuteRequestSend) -> None:
        target = self._target(member, msg.participantId, "mute_request")
        if target is None:
            return
        self._send(target, p.MuteRequestOut(from_=member.id, kind=msg.kind))

    async def _on_end_meeting(self, member: Member, msg: p.EndMeeting) -> None:
        await self.end("ended")

    # ------------------------------------------------------------------------------------- cloud recording
    async def _recording_for_joined(self) -> tuple[p.RecordingInfo | None, p.RecordingOptionsInfo | None]:
        """What ``joined`` says of recording: the running one and the meeting's options (loaded once)."""
        control = self.config.recording
        if control is None:
            return None, None
        if not self._recording_attached:
            control.attach(self.ref.room_name, self._recording_notify)
            self._recording_attached = True
        if not self._recording_options_loaded:
            try:
                self._recording_options = await control.options(self.ref)
                self._recording_options_loaded = True
            except Exception:  # noqa: BLE001 - a join never fails for want of recording options
                log.exception("recording_options_failed", room_name=self.ref.room_name)
        state = control.state(self.ref.room_name)
        options = self._recording_options
        return (p.RecordingInfo(**state) if state else None,
                p.RecordingOptionsInfo(**options) if options else None)

    def _notify(self, out: Any, to: str | None) -> None:
        """A control's message to one participant (an admitted member id), the hosts (``"@hosts"``) or everyone."""
        if to is None:
            self._broadcast(out)
        elif to == "@hosts":
            self._broadcast(out, only=lambda m: m.is_host)
        else:
            target = self.members.get(to)
            if target is not None and not target.pending:
                self._send(target, out)

    def _recording_notify(self, message: dict[str, Any], to: str | None) -> None:
        """The control's ``notify``: a ``recording`` message to one participant, the hosts, or everyone."""
        self._notify(p.RecordingStatus(**message), to)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_recording_start(self, member: Member, msg: p.RecordingStart) -> None:
        if self.config.recording is None:
            self._send(member, p.RecordingStatus(state="unavailable", message="Cloud recording is not available"))
            return
        self._spawn(self.config.recording.start(self.ref, member.id, "manual"))

    async def _on_recording_stop(self, member: Member, msg: p.RecordingStop) -> None:
        if self.config.recording is not None:
            self._spawn(self.config.recording.stop(self.ref, "stopped"))

    # ---------------------------------------------------------------------------------- live captions
    async def _captions_for_joined(self) -> p.CaptionsInfo | None:
        """What ``joined`` says of live transcription: its state and the meeting's options (loaded once), or
        None when the meeting has no ``liveTranscription`` (or this server no captioner)."""
        control = self.config.captions
        if control is None:
            return None
        if not self._captions_attached:
            control.attach(self.ref.room_name, self._captions_notify)
            self._captions_attached = True
        if not self._captions_options_loaded:
            try:
                self._captions_options = await control.options(self.ref)
                self._captions_options_loaded = True
            except Exception:  # noqa: BLE001 - a join never fails for want of caption options
                log.exception("captions_options_failed", room_name=self.ref.room_name)
        options = self._captions_options
        if not options:
            return None
        return p.CaptionsInfo(state=control.state(self.ref.room_name) or "off", **options)

    def _captions_notify(self, message: dict[str, Any], to: str | None) -> None:
        """The control's ``notify``: a ``captions`` message to one participant, the hosts, or everyone."""
        self._notify(p.CaptionsStatus(**message), to)

    async def _on_captions_start(self, member: Member, msg: p.CaptionsStart) -> None:
        if self.config.captions is None:
            self._send(member, p.CaptionsStatus(state="unavailable", message="Live transcription is not available"))
            return
        self._spawn(self.config.captions.start(self.ref, member.id, "manual"))

    async def _on_captions_stop(self, member: Member, msg: p.CaptionsStop) -> None:
        if self.config.captions is not None:
            self._spawn(self.config.captions.stop(self.ref, "stopped"))

    async def _on_caption(self, member: Member, msg: p.CaptionSend) -> None:
        """The captioner's words of a speaker: relayed to everyone but the captioner with the speaker's
        display name (when the meeting shows captions: ``liveCaptions``), and finals kept for the stored live
        transcript. The final caption of someone who left in the last :data:`DEPARTED_CAPTION_SECONDS` (what they
        said just before leaving, decoded after) is still kept and relayed; other captions of people not in the
        call are dropped."""
        if not msg.text.strip():
            return
        speaker = self.members.get(msg.participantId)
        if speaker is not None:
            display_name = speaker.display_name
        else:
            departed = self._departed.get(msg.participantId)
            if departed is None or not msg.final or time.monotonic() - departed[1] > DEPARTED_CAPTION_SECONDS:
                return
            display_name = departed[0]
        now = self.config.now()
        if msg.final and self.config.captions is not None:
            self.config.captions.caption(self.ref, msg.participantId, display_name, msg.text, msg.utteranceId, now)
        if (self._captions_options or {}).get("liveCaptions"):
            self._broadcast(p.CaptionOut(participantId=msg.participantId, displayName=display_name, text=msg.text,
                                         final=msg.final, utteranceId=msg.utteranceId, at=format_utc(now)),
                            exclude=member.id)

    def _remember_departed(self, member: Member) -> None:
        """Keep who left for :data:`DEPARTED_CAPTION_SECONDS` (at most :data:`DEPARTED_KEPT` of them)."""
        now = time.monotonic()
        self._departed[member.id] = (member.display_name, now)
        if len(self._departed) > DEPARTED_KEPT:
            for pid in [pid for pid, (_, at) in self._departed.items() if now - at > DEPARTED_CAPTION_SECONDS]:
                del self._departed[pid]
            while len(self._departed) > DEPARTED_KEPT:
                del self._departed[next(iter(self._departed))]

    def _detach_if_empty(self) -> None:
        if self._captions_attached and self.is_empty() and self.config.captions is not None:
            self.config.captions.detach(self.ref.room_name, self._captions_notify)
            self._captions_attached = False
        if self._recording_attached and self.is_empty() and self.config.recording is not None:
            self.config.recording.detach(self.ref.room_name, self._recording_notify)
            self._recording_attached = False

    # ------------------------------------------------------------------------------------------- leaving
    async def _knock(self, member: Member) -> None:
        if member.id in self.knockers:
            self._send(member, p.KnockPending())
            return
        self.lobby.pop(member.id, None)
        if not self.locked and not self.policy.private:  # unlocked meanwhile: walk in
            await self._admit(member)
            return
        self.knockers[member.id] = member
        self._send(member, p.KnockPending())
        self._broadcast(p.Knocked(participant=member.public()), only=lambda m: m.is_host)
        await self._event("participant.knocked", member)

    async def disconnect(self, participant_id: str, reason: str = "disconnected") -> None:
        """The connection of ``participant_id`` is gone (or it left/was removed). Idempotent."""
        if participant_id in self.lobby:
            del self.lobby[participant_id]
            return
        knocker = self.knockers.pop(participant_id, None)
        if knocker is not None:
            self._broadcast(p.KnockCancelled(participantId=participant_id), only=lambda m: m.is_host)
            await self._event("participant.knock_cancelled", knocker)
            return
        self._note_activity()
        member = self.members.pop(participant_id, None)
        if member is None:
            return
        self._remember_departed(member)
        if member.eject_timer is not None:
            member.eject_timer.cancel()
        if self.config.sfu is not None and not member.pending:  # kick from the SFU, revoke its token, drop it
            await self.config.sfu.left(participant_id, reason)
        if not member.pending:  # nobody was told of a member whose join was still being recorded
            self._broadcast(p.ParticipantLeft(participantId=participant_id, reason=reason))  # type: ignore[arg-type]
            metrics.PARTICIPANTS_LEFT.labels(self.ref.room_mode, member.role).inc()
        await self._event("participant.left", member)
        self._detach_if_empty()

    async def end(self, reason: str) -> None:
        """End the call for everyone (a host's end_meeting, DELETE, or deactivation): ``ended`` then close."""
        self.ended = reason in ("deleted", "expired")
        text = p.dump(p.Ended(reason=reason))  # type: ignore[arg-type]
        everyone = list(self.lobby.values()) + list(self.knockers.values())
        for m in everyone:
            m.outbox.send_text(text)
            m.outbox.close(CLOSE_ENDED, reason)
        self.lobby.clear()
        for k in list(self.knockers.values()):
            await self.disconnect(k.id)
        self.knockers.clear()
        members = list(self.members.values())
        for m in members:
            m.outbox.send_text(text)
            m.outbox.close(CLOSE_ENDED, reason)
        while self.members:
            last = next(reversed(self.members))
            member = self.members.pop(last)
            self._remember_departed(member)
            if not member.pending:
                metrics.PARTICIPANTS_LEFT.labels(self.ref.room_mode, member.role).inc()
            if member.eject_timer is not None:
                member.eject_timer.cancel()
            if self.config.sfu is not None:
                await self.config.sfu.left(member.id, "ended")
            await self._event("participant.left", member)
        self.granted.clear()
        self.locked = bool(self.ref.is_locked)
        if self.config.recording is not None:  # the call is over: so is its recording (the file is kept)
            self._spawn(self.config.recording.stop(self.ref, reason))
        if self.config.captions is not None:  # and its live transcription (what was said is stored)
            self._spawn(self.config.captions.stop(self.ref, reason))
        self._detach_if_empty()
