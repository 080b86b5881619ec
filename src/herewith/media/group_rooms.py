"""The control plane of group rooms (``roomMode: group``) on Janus.

:class:`GroupRooms` (``Services.group_rooms``, built by :func:`herewith.media.setup.create_group_rooms`) knows
the Janus instances (a supervised local one, or external ones from ``HEREWITH_JANUS_URL``), places rooms on
them by load and keeps one :class:`GroupRoom` per meeting. A :class:`GroupRoom` is the
:class:`~herewith.signaling.live_room.SfuRoom` of a live group room (``RoomConfig.sfu``): ``admitted(member)``,
``handle(member, msg)``, ``left(participant_id, reason)``; and the :class:`~herewith.media.sfu_proxy.FeedRoom`
of its participants' :class:`~herewith.media.sfu_proxy.SfuPeer` proxies.

How Janus enforces the rules (docs/janus-notes.md):

* the Janus room is created on the first admission, private, with a random-looking ``secret`` and an empty
  ``allowed`` list (nobody may publish); only Herewith holds the VideoRoom ``admin_key`` and the secret;
* a participant whose role sends media gets a random publish token, added to ``allowed`` and used in its
  publisher ``join``; viewers get none, so Janus refuses their publish (433);
* leaving or removal: the token is removed from ``allowed``, a removed publisher is kicked, and the
  participant's Janus session is destroyed (its handles go with it);
* meeting deleted or deactivated: the Janus room is destroyed (:meth:`GroupRooms.on_meeting_deleted`, a
  subscriber of :class:`~herewith.meetings.events.MeetingEvents`); an empty room is destroyed after
  ``janus_room_idle_seconds``;
* Janus restart: the room is created again (same id and secret, the current tokens) and every participant
  reconnects (:mod:`herewith.media.sfu_proxy`); Herewith restart: :meth:`GroupRooms.reconcile` destroys the
  rooms this node left behind and those of gone meetings.

Room ids and secrets are derived from the meeting id with the signing key (HMAC), so every Herewith process
with the same key finds the same room and no table is needed.

Usage::

    rooms = GroupRooms.from_settings(settings)     # None when janus is off
    await rooms.start()                            # starts the local Janus, reconciles
    room = rooms.room_for(ref)                     # RoomConfig.sfu of a group room
    await rooms.on_meeting_deleted(meeting, "deleted")
    await rooms.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from herewith.config import Settings
from herewith.media.janus import (
    VIDEOROOM,
    VIDEOROOM_ERROR_NO_SUCH_ROOM,
    VIDEOROOM_ERROR_ROOM_EXISTS,
    JanusClient,
    JanusError,
    JanusSession,
    JanusSessionLost,
    JanusUnavailable,
    VideoRoomAdmin,
)
from herewith.media.placement import InstanceLoad, Placement
from herewith.media.selection import Speakers
from herewith.media.sfu_proxy import SfuPeer
from herewith.media.supervisor import JanusStartError, JanusSupervisor
from herewith.meetings.events import EndedMeeting, EndReason
from herewith.signaling import protocol as p
from herewith.signaling.live_room import SfuMember

__all__ = ["GroupRoom", "GroupRooms", "JanusInstance", "room_identity"]

log = logging.getLogger(__name__)

DESCRIPTION_PREFIX = "herewith:"

# Janus VideoRoom's active speaker detection (room ``create`` fields): it averages the RTP audio-level header
# extension (RFC 6464, sent by browsers and by aiortc) over ``audio_active_packets`` packets (20 ms each: 0.5 s)
# and sends ``talking`` when the average magnitude is below ``audio_level_average`` (dBov, 0 loud .. 127
# silent; 60 = anything above background noise), ``stopped-talking`` when it rises above it again. Janus sends
# each event to every publisher handle of the room: a shorter window (0.2 s) made speech pauses flap and cost
# Herewith one long-poll answer per participant per flap (0.46 core for 50 publishers, 3 of them talking).
TALKING_EVENTS = {"audiolevel_ext": True, "audiolevel_event": True, "audio_active_packets": 25,
                  "audio_level_average": 60}


def room_identity(signing_key: str, meeting_id: str) -> tuple[int, str]:
    """``(room_id, secret)`` of a meeting's Janus room: HMAC-SHA256 of the meeting id with the signing key.

    ``room_id`` is below 2**48 (exact in JSON and JavaScript); ``secret`` is 32 URL-safe characters.
    """
    digest = hmac.new(signing_key.encode(), f"janus-room:{meeting_id}".encode(), hashlib.sha256).digest()
    room_id = int.from_bytes(digest[:6], "big") + 1
    secret = hmac.new(signing_key.encode(), f"janus-secret:{meeting_id}".encode(), hashlib.sha256).hexdigest()[:32]
    return room_id, secret


@dataclass
class JanusInstance:
    """One Janus: its client (api + admin secrets), the VideoRoom ``admin_key``, and a control session."""

    url: str
    client: JanusClient
    admin_key: str | None
    supervisor: JanusSupervisor | None = None
    _control: JanusSession | None = None
    _admin: VideoRoomAdmin | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def rooms(self) -> VideoRoomAdmin:
        """The VideoRoom management handle, on a control session re-opened when it was lost."""
        async with self._lock:
            if self._control is None or self._control.lost.is_set() or self._admin is None:
                if self._control is not None:
                    await self._control.destroy()
                self._control = await self.client.create_session()
                self._admin = VideoRoomAdmin(await self._control.attach(VIDEOROOM), admin_key=self.admin_key)
            return self._admin

    async def call(self, fn: Callable[[VideoRoomAdmin], Awaitable[Any]]) -> Any:
        """Run ``fn(rooms)``; once more on a fresh control session if the session was lost meanwhile."""
        try:
            return await fn(await self.rooms())
        except JanusSessionLost:
            return await fn(await self.rooms())

    async def close(self) -> None:
        if self._control is not None:
            await self._control.destroy()
            self._control = None
        await self.client.aclose()


class MeetingRoom(Protocol):
    """What :meth:`GroupRooms.room_for` reads of a room reference (:class:`herewith.rooms.service.RoomRef`
    and the live room's ref have it)."""

    @property
    def meeting_id(self) -> str: ...

    @property
    def room_name(self) -> str: ...  # with the leading slash


#: The role whose subscription carries audio only (herewith.captions: the live captioner decodes speech).
AUDIO_ONLY_ROLE = "captioner"

class GroupRoom:
    """One group room's Janus side: the Janus room, its publish tokens, its participants' proxies and feeds.

    Implements :class:`~herewith.signaling.live_room.SfuRoom` (for the live room) and
    :class:`~herewith.media.sfu_proxy.FeedRoom` (for its peers).
    """

    def __init__(self, rooms: GroupRooms, meeting_id: str, room_name: str) -> None:
        self.rooms = rooms
        self.meeting_id = meeting_id
        self.room_name = room_name
        self.room_id, self.secret = room_identity(rooms.signing_key, meeting_id)
        self.peers: dict[str, SfuPeer] = {}
        self.tokens: dict[str, str] = {}  # participant id -> publish token (roles that send)
        self.audio_only: set[str] = set()  # the live captioner: it subscribes to everyone's audio only
        self.instance: JanusInstance | None = None
        self.created = False
        self._lock = asyncio.Lock()
        self._idle: asyncio.TimerHandle | None = None
        self.destroyed = False
        self.speakers = Speakers(limit=rooms.settings.group_audio_streams)

    # -- Janus room ----------------------------------------------------------------------------------
    async def ensure(self, *, check: bool = False) -> JanusInstance:
        """Create the Janus room if needed (placing it first) and return its instance.

        With ``check``, ask Janus whether the room still exists (after a session loss) and recreate it with
        the current tokens. Raises :class:`JanusError` / :class:`JanusUnavailable`.
        """
        await self.rooms.wait_ready()
        async with self._lock:
            if self.instance is None:
                placement = self.rooms.placement
                assert placement is not None
                url = placement.place(self.room_id, expected_participants=len(self.peers))
                placement.participant_joined(self.room_id, len(self.peers))
                self.instance = self.rooms.instances[url]
            instance = self.instance
            if self.created and not check:
                return instance
            if self.created and await instance.call(lambda r: r.exists(self.room_id)):
                return instance
            await self._create(instance)
            return instance

    async def _create(self, instance: JanusInstance) -> None:
        settings = self.rooms.settings
        description = f"{DESCRIPTION_PREFIX}{self.meeting_id}:{self.rooms.node_id}"
        try:
            await instance.call(lambda r: r.create_room(
                self.room_id, secret=self.secret, description=description,
                publishers=settings.room_max_participants_group, allowed=[], bitrate=settings.janus_room_bitrate,
                notify_joining=False, extra=TALKING_EVENTS,
            ))
            log.info("janus room %s created for meeting %s on %s", self.room_id, self.meeting_id, instance.url)
        except JanusError as exc:
            if exc.code != VIDEOROOM_ERROR_ROOM_EXISTS:
                raise
            log.info("janus room %s exists already (adopted)", self.room_id)
        tokens = list(self.tokens.values())
        if tokens:
            await instance.call(lambda r: r.allowed(self.room_id, "add", secret=self.secret, tokens=tokens))
        self.created = True

    async def open_session(self, *, check: bool) -> JanusSession:
        """:class:`~herewith.media.sfu_proxy.FeedRoom`: the Janus room made sure of (:meth:`ensure`), a new
        Janus session on its instance. Raises :class:`JanusError` / :class:`JanusUnavailable`."""
        instance = await self.ensure(check=check)
        return await instance.client.create_session()

    @property
    def janus_restarted(self) -> asyncio.Event | None:
        """Set after the local Janus this process supervises restarted; None for external instances."""
        supervisor = self.rooms.supervisor
        return supervisor.restarted if supervisor is not None else None

    async def kick(self, feed_id: int) -> None:
        """Remove publisher ``feed_id`` from the Janus room (a removed participant)."""
        if self.instance is not None:
            await self.instance.call(lambda r: r.kick(self.room_id, feed_id, secret=self.secret))

    async def request_keyframe(self, feed_id: int) -> None:
        """Ask the publisher of ``feed_id`` for a keyframe (Janus VideoRoom publisher ``configure`` with
        ``keyframe: true``, a PLI on each of its video streams); nothing when that feed is gone."""
        peer = next((pe for pe in self.peers.values() if pe.feed_id == feed_id), None)
        if peer is not None and peer.pub is not None:
            await peer.pub.message({"request": "configure", "keyframe": True})

    async def destroy(self) -> None:
        """Close every participant's Janus session and destroy the Janus room (meeting deleted, or idle)."""
        self.destroyed = True
        if self._idle is not None:
            self._idle.cancel()
        for peer in list(self.peers.values()):
            await peer.close("ended")
        self.peers.clear()
        self.tokens.clear()
        async with self._lock:
            instance = self.instance
            if instance is not None and self.created:
                try:
                    await instance.call(lambda r: r.destroy_room(self.room_id, secret=self.secret))
                    log.info("janus room %s of meeting %s destroyed", self.room_id, self.meeting_id)
                except JanusError as exc:
                    if exc.code != VIDEOROOM_ERROR_NO_SUCH_ROOM:
                        log.warning("janus room %s: destroy failed: %s", self.room_id, exc)
                except JanusUnavailable as exc:
                    log.warning("janus room %s: destroy failed: %s", self.room_id, exc)
            self.created = False
            self.instance = None
        if self.rooms.placement is not None:
            self.rooms.placement.remove(self.room_id)

    # -- the live room's interface (SfuRoom, RoomConfig.sfu) --------------------------------------------
    async def admitted(self, member: SfuMember) -> None:
        """``member`` entered the call: give it a proxy, and a publish token if its role sends."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self.destroyed = False
        token = secrets.token_urlsafe(18) if member.sends else None
        if getattr(member, "role", None) == AUDIO_ONLY_ROLE:
            self.audio_only.add(member.id)
        # The proxy is registered before the first await: the participant already has its ``joined`` and may
        # send ``sfu_publish`` at once. A knocker is admitted from the host's connection, so its messages are
        # handled concurrently with this call; they wait in the proxy's inbox until it starts (below, once the
        # token is allowed). Without this, a publish arriving during the Janus call was refused ("No SFU
        # connection") and the participant never published (seen under CPU load in the group SFU test).
        old = self.peers.get(member.id)
        peer = SfuPeer(self, member.id, member.outbox.send_text, token=token)
        if member.grid:  # it will say what its grid shows: nothing is forwarded until it does
            peer.view = {}
        self.peers[member.id] = peer
        if token is not None:
            self.tokens[member.id] = token
        if old is not None:
            await old.close("replaced")
        if token is not None:
            # Under the room lock: a creation in flight (another participant's ensure()) may have read the
            # tokens before this one was added; waiting for it and adding the token afterwards closes that gap
            # (Janus refused such a participant's publish with 433).
            async with self._lock:
                if self.created and self.instance is not None:
                    instance = self.instance
                    try:
                        await instance.call(lambda r: r.allowed(self.room_id, "add", secret=self.secret, tokens=[token]))
                    except (JanusError, JanusUnavailable) as exc:
                        log.warning("janus room %s: adding a token failed (%s); the room will be checked", self.room_id, exc)
                        self.created = False  # the next ensure() recreates the room with every token
        if peer.closing:  # it left (or the room ended) during the Janus call: left() has cleaned up
            return
        if self.instance is not None and self.rooms.placement is not None:
            self.rooms.placement.participant_joined(self.room_id)
        peer.start()
        if self.speakers.active is not None:
            peer.send(self._speaker_message())

    async def handle(self, member: SfuMember, msg: p.SfuClientMessage) -> None:
        """An ``sfu_*`` message of a participant in the call (``error sfu_unavailable`` when it has no proxy)."""
        peer = self.peers.get(member.id)
        if peer is None:
            member.outbox.send_text(p.dump(p.error(p.ErrorCode.SFU_UNAVAILABLE, "No SFU connection", msg.type)))
            return
        peer.deliver(msg)

    async def left(self, participant_id: str, reason: str) -> None:
        """The participant left the call: revoke its token, kick it if removed, destroy its Janus session."""
        peer = self.peers.pop(participant_id, None)
        token = self.tokens.pop(participant_id, None)
        self.audio_only.discard(participant_id)
        if peer is not None:
            await peer.close(reason)
            if self.instance is not None and self.rooms.placement is not None:
                with contextlib.suppress(KeyError):
                    self.rooms.placement.participant_left(self.room_id)
        if token is not None and self.created and self.instance is not None:
            try:
                await self.instance.call(lambda r: r.allowed(self.room_id, "remove", secret=self.secret, tokens=[token]))
            except (JanusError, JanusUnavailable) as exc:
                log.info("janus room %s: removing a token failed: %s", self.room_id, exc)
        if not self.peers and not self.destroyed:
            self._schedule_idle_destroy()

    def _schedule_idle_destroy(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        delay = self.rooms.settings.janus_room_idle_seconds

        def fire() -> None:
            self._idle = None
            if not self.peers:
                self.rooms.forget(self)
                asyncio.get_running_loop().create_task(self.destroy())

        self._idle = asyncio.get_running_loop().call_later(delay, fire)

    # -- feeds ---------------------------------------------------------------------------------------
    def feed_changed(self, participant_id: str) -> None:
        """A participant's published streams changed (published, renegotiated): others resubscribe."""
        self._wake_others(participant_id)

    def feed_gone(self, participant_id: str) -> None:
        if self.speakers.gone(participant_id):
            self._speakers_changed()
        self._wake_others(participant_id)

    def talking(self, participant_id: str, talking: bool, level: float | None) -> None:
        """Janus's ``talking``/``stopped-talking`` event for a participant's audio (``level``: average dBov
        magnitude, 0 loud .. 127 silent): tell everyone the active speaker, move audio subscriptions."""
        if self.speakers.talking(participant_id, talking, level):
            self._speakers_changed()

    def view_changed(self, participant_id: str) -> None:
        """A participant reported what its grid shows (``sfu_view``): bring its subscription in step."""
        peer = self.peers.get(participant_id)
        if peer is not None:
            peer.wake()

    def _speaker_message(self) -> p.ActiveSpeaker:
        return p.ActiveSpeaker(participantId=self.speakers.active, speakers=self.speakers.loudest())

    def _speakers_changed(self) -> None:
        msg = self._speaker_message()
        for peer in self.peers.values():
            peer.send(msg)
            if peer.view is not None:
                peer.wake()  # its audio follows the loudest speakers

    def _wake_others(self, participant_id: str) -> None:
        for pid, peer in self.peers.items():
            if pid != participant_id:
                peer.wake()

    def live_feed_ids(self) -> set[int]:
        return {peer.feed_id for peer in self.peers.values() if peer.live and peer.feed_id is not None}

    def wanted_streams(self, participant_id: str) -> set[tuple[int, str]]:
        """``{(feed_id, mid)}`` a participant should receive.

        Without a view (it never sent ``sfu_view``: test clients, older pages) every live stream of every other
        publisher. With one: the videos its grid shows (participant and source), and the audio of the loudest
        ``group_audio_streams`` speakers (:class:`~herewith.media.selection.Speakers`; everyone's while no more
        than that many others send audio). The live captioner:
        the audio of every publisher, nothing else.
        """
        me = self.peers.get(participant_id)
        view = me.view if me is not None else None
        audio_from = set(self.speakers.loudest()) if view is not None else set()
        if view is not None:  # no more senders of sound than that: everyone's audio (nothing to choose, no clipping)
            senders = {pid for pid, peer in self.peers.items() if pid != participant_id and peer.live
                       and any(kind == "audio" for kind, _ in peer.streams.values())}
            if len(senders) <= self.speakers.limit:
                audio_from = senders
        audio_only = participant_id in self.audio_only
        out: set[tuple[int, str]] = set()
        for pid, peer in self.peers.items():
            if pid == participant_id or not peer.live or peer.feed_id is None:
                continue
            for mid, (kind, source) in peer.streams.items():
                if audio_only:
                    if kind == "audio":
                        out.add((peer.feed_id, mid))
                elif view is None or (pid in audio_from if kind == "audio" else (pid, source) in view):
                    out.add((peer.feed_id, mid))
        return out

    def stats(self) -> dict[str, Any]:
        return {"roomId": self.room_id, "url": self.instance.url if self.instance else None,
                "participants": len(self.peers), "publishers": len(self.live_feed_ids())}


class GroupRooms:
    """Janus instances, room placement and the :class:`GroupRoom` of every live group room of this process.

    ``instances`` maps URL -> :class:`JanusInstance`; ``supervisor`` is the local Janus when Herewith runs one.
    ``meeting_alive(meeting_id) -> bool`` (async) tells :meth:`reconcile` which leftover rooms to keep.
    """

    def __init__(self, settings: Settings, *, signing_key: str, node_id: str,
                 supervisor: JanusSupervisor | None = None, instances: list[JanusInstance] | None = None) -> None:
        self.settings = settings
        self.signing_key = signing_key
        self.node_id = node_id
        self.supervisor = supervisor
        self.instances: dict[str, JanusInstance] = {i.url: i for i in instances or []}
        self.placement: Placement | None = Placement(self.instances) if self.instances else None  # type: ignore[assignment]
        self.rooms: dict[str, GroupRoom] = {}  # meeting id -> room
        self.ready = asyncio.Event()
        self.failed: str | None = None
        self.meeting_alive: Callable[[str], Awaitable[bool]] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> GroupRooms | None:
        """The control plane for ``settings.janus_mode``: None when ``off``."""
        mode = settings.janus_mode
        if mode == "off":
            return None
        node_id = _node_id(settings.janus_workdir)
        if mode == "external":
            admin_urls = list(settings.janus_admin_url) + [None] * len(settings.janus_url)
            instances = [
                JanusInstance(url, JanusClient(url, settings.janus_api_secret, admin_urls[i], settings.janus_admin_secret),
                              settings.janus_admin_key)
                for i, url in enumerate(settings.janus_url)
            ]
            return cls(settings, signing_key=settings.signing_key, node_id=node_id, instances=instances)
        low, _, high = settings.janus_rtp_ports.partition("-")
        sup = JanusSupervisor(
            settings.janus_workdir, binary=settings.janus_binary, rtp_ports=(int(low), int(high or low)),
            ice_enforce_list=settings.janus_ice_enforce_list, nat_1_1_mapping=settings.janus_nat_1_1_mapping,
            debug_level=3, transport=settings.janus_transport,
        )
        rooms = cls(settings, signing_key=settings.signing_key, node_id=node_id, supervisor=sup)
        sup.on_restart.append(rooms.on_janus_restart)
        return rooms

    # -- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the local Janus (or reach the external ones), then reconcile leftover rooms.

        Never raises: a failure is logged, ``failed`` says why, and joins get ``sfu_unavailable``.
        """
        try:
            if self.supervisor is not None:
                await self.supervisor.start()
                inst = JanusInstance(self.supervisor.url, self.supervisor.client(), self.supervisor.admin_key, self.supervisor)
                self.instances = {inst.url: inst}
                self.placement = Placement([inst.url])
            self.ready.set()
            await self.reconcile()
        except (JanusStartError, JanusError, JanusUnavailable, OSError) as exc:
            self.failed = str(exc)
            log.error("group rooms: Janus unavailable: %s", exc)
            if self.instances:
                self.ready.set()

    async def wait_ready(self, timeout: float = 20.0) -> None:
        if self.failed and not self.ready.is_set():
            raise JanusUnavailable(self.failed)
        try:
            async with asyncio.timeout(timeout):
                await self.ready.wait()
        except TimeoutError:
            raise JanusUnavailable(self.failed or "Janus did not start in time") from None

    async def stop(self) -> None:
        for room in list(self.rooms.values()):
            for peer in list(room.peers.values()):
                with contextlib.suppress(Exception):
                    await peer.close("shutdown")
        for inst in self.instances.values():
            with contextlib.suppress(Exception):
                await inst.close()
        if self.supervisor is not None:
            await self.supervisor.stop()

    async def reconcile(self) -> list[int]:
        """Destroy Janus rooms this node created before it restarted, and rooms of meetings that are gone.

        Returns the destroyed room ids. Rooms of other Herewith nodes whose meeting is live are kept.
        """
        destroyed: list[int] = []
        for inst in self.instances.values():
            try:
                listed = await inst.call(lambda r: r.list_rooms())
            except (JanusError, JanusUnavailable) as exc:
                log.warning("reconcile %s: %s", inst.url, exc)
                continue
            for room in listed:
                desc = str(room.get("description") or "")
                if not desc.startswith(DESCRIPTION_PREFIX):
                    continue
                meeting_id, _, node = desc[len(DESCRIPTION_PREFIX):].partition(":")
                live_here = any(r.room_id == room.get("room") for r in self.rooms.values())
                if live_here:
                    continue
                alive = True
                if self.meeting_alive is not None:
                    with contextlib.suppress(Exception):
                        alive = await self.meeting_alive(meeting_id)
                if node != self.node_id and alive:
                    continue
                room_id, secret = room_identity(self.signing_key, meeting_id)
                if room_id != room.get("room"):
                    continue  # not ours after all (another signing key)
                with contextlib.suppress(JanusError, JanusUnavailable):
                    await inst.call(lambda r: r.destroy_room(room_id, secret=secret))
                    destroyed.append(room_id)
        if destroyed:
            log.info("reconcile: destroyed %d leftover Janus rooms", len(destroyed))
        return destroyed

    # -- rooms ---------------------------------------------------------------------------------------
    def room_for(self, ref: MeetingRoom) -> GroupRoom:
        """The :class:`GroupRoom` of ``ref`` (a room reference: ``meeting_id``, ``room_name``), created on
        first use: the ``sfu_room_for`` of :class:`~herewith.signaling.service.Signaling`."""
        room = self.rooms.get(ref.meeting_id)
        if room is None:
            room = GroupRoom(self, ref.meeting_id, ref.room_name)
            self.rooms[ref.meeting_id] = room
        return room

    def forget(self, room: GroupRoom) -> None:
        if self.rooms.get(room.meeting_id) is room:
            del self.rooms[room.meeting_id]

    async def on_meeting_deleted(self, meeting: EndedMeeting, reason: EndReason) -> None:
        """Subscriber of :class:`~herewith.meetings.events.MeetingEvents`: destroy the meeting's Janus room
        (deleted or deactivated)."""
        room = self.rooms.pop(meeting.id, None)
        if room is not None:
            await room.destroy()
            return
        if getattr(meeting, "room_mode", "group") != "group" or not self.ready.is_set():
            return
        room_id, secret = room_identity(self.signing_key, meeting.id)  # e.g. left over from before a restart
        for inst in self.instances.values():
            with contextlib.suppress(JanusError, JanusUnavailable):
                await inst.call(lambda r: r.destroy_room(room_id, secret=secret))

    async def on_janus_restart(self, supervisor: JanusSupervisor) -> None:
        """The supervisor restarted Janus: recreate the rooms that have participants (they reconnect)."""
        inst = self.instances.get(supervisor.url)
        if inst is None:
            return
        for room in list(self.rooms.values()):
            if room.instance is inst and room.peers:
                try:
                    await room.ensure(check=True)
                except (JanusError, JanusUnavailable) as exc:
                    log.warning("janus room %s: recreate after restart failed: %s", room.room_id, exc)

    def instance_loads(self) -> list[InstanceLoad]:
        """Each Janus instance: ``url``, ``rooms``, ``participants``, ``up`` (the local Janus counts as down
        while its process is not running), for ``/metrics``; empty before Janus started."""
        if self.placement is None:
            return []
        loads = self.placement.loads()
        if self.supervisor is not None and not self.supervisor.running:
            loads = [dataclasses.replace(load, up=False) for load in loads]
        return loads

    def stats(self) -> dict[str, Any]:
        return {
            "instances": [vars(load) for load in self.placement.loads()] if self.placement else [],
            "rooms": [r.stats() for r in self.rooms.values()],
            "janusPid": self.supervisor.pid if self.supervisor else None,
            "janusRestarts": self.supervisor.restarts if self.supervisor else 0,
        }


def _node_id(workdir: Path) -> str:
    """A stable id of this Herewith node (``<workdir>/node_id``), marking the Janus rooms it creates."""
    path = Path(workdir) / "node_id"
    with contextlib.suppress(OSError):
        return path.read_text().strip()
    node = secrets.token_hex(6)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(node)
    return node
