"""Recording control: starting and stopping cloud recordings of live rooms, and the ingest of their media.

:class:`RecordingControl` is one per process (built by ``create_app``). It is the live rooms'
``RoomConfig.recording`` (:class:`herewith.signaling.live_room.RecordingControl`), a subscriber of room
events (triggers; a room left to its recorders) and of meeting events (a deleted or deactivated meeting
stops its recording), and the owner of the ingest streams of the recordings it started.

A start (a host's ``recording_start``, or a trigger: ``automatic`` when the first participant joined,
``automatic-2nd-participant`` when the second did; only for ``recording.type == "cloud"``):

1. a ``starting`` row held by this node (:func:`herewith.recordings.service.create_recording`), committed;
2. the recorder page URL: ``{public_url}/{room}?roomKey=<recorder key>&recorder=1&recordingId=<id>&ingestToken=<JWT>``
   and ``launcher.start(recording_id, page_url)`` (R2's :class:`RecorderPool`, or any :class:`RecorderLauncher`).
   No launcher, or none free (the launcher's ``free`` count, when it has one): the asking host (hosts, for a
   trigger) is told ``recording {state: unavailable}`` and nothing is made; nothing waits;
3. ``recording {state: starting}`` to the room as soon as the row exists (a launch takes seconds); the
   launcher answering ``False`` (its Chromium did not come up) makes it ``failed`` and the row goes;
   ``recording {state: recording}`` once the first composite chunk is on disk (so the indicator means media
   is really being written). No media within ``recording_start_timeout_seconds``: stopped, ``failed``.

A stop (a host's ``recording_stop``, the room left to recorders for ``recording_stop_grace_seconds``, the
call ended, the meeting deleted or deactivated, ``recording_max_duration_seconds`` reached, the recorder gone
for ``recording_recorder_lost_seconds``, shutdown): ``launcher.stop(id)`` (the page flushes its
MediaRecorders and closes its sockets), at most ``STOP_FLUSH_SECONDS`` for the streams to close (then they
are closed here), then the row becomes ``processing`` with its end time, the room hears
``recording {state: stopped}`` and the recording job finalizes it (:mod:`herewith.recordings.finalize`).

Messages to rooms go through the ``notify`` callback each live room attaches (:meth:`attach`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlencode

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.auth.room_keys import issue_room_key
from herewith.config import Settings
from herewith.db.transactions import in_transaction
from herewith.kit.time import Clock
from herewith.recordings import repository, service
from herewith.recordings.ingest import IngestRefused, IngestStream, check_stream
from herewith.recordings.models import FAILED, LIVE_STATES, PROCESSING, RECORDING, STARTING, RecordingTrack
from herewith.recordings.storage import LocalStorage
from herewith.rooms.service import room_state

log = structlog.get_logger(__name__)

#: Roles that are not people: they neither trigger a recording nor keep one going.
NOT_PEOPLE = frozenset({"recorder", "streamer", "captioner"})
STOP_FLUSH_SECONDS = 10.0
LAUNCHER_TIMEOUT_SECONDS = 60.0
TO_HOSTS = "@hosts"
NO_FREE_RECORDER = "No recorder is free right now; try again later"
OPTIONS_CACHE = 2048


class RecorderLauncher(Protocol):
    """What starts and stops a recorder (R2's ``herewith.media.recorder.RecorderPool`` implements it).

    ``start(recording_id, page_url)``: open the recorder page (it joins the room as ``recorder`` and streams
    to the ingest socket); ``False`` when no recorder is free. ``stop(recording_id)``: close the page
    gracefully (MediaRecorders flush, sockets close). ``close()``: shutdown."""

    async def start(self, recording_id: str, page_url: str) -> bool: ...

    async def stop(self, recording_id: str) -> None: ...

    async def close(self) -> None: ...


Notify = Callable[[dict[str, Any], str | None], None]
"""A live room's way to deliver ``recording`` messages: ``notify(message, to)`` with ``to`` a participantId,
``"@hosts"`` or None (everyone). Never blocks, never raises."""


class RoomLike(Protocol):
    @property
    def meeting_id(self) -> str: ...

    @property
    def room_name(self) -> str: ...


@dataclass(frozen=True)
class _Room:
    meeting_id: str
    room_name: str


@dataclass(eq=False)
class Active:
    """A recording this node started and has not stopped yet."""

    recording_id: str
    room_name: str
    meeting_id: str
    requested_by: str | None
    state: str = STARTING  # starting | recording
    stopping: bool = False
    streams: dict[str, IngestStream] = field(default_factory=dict)
    media_bytes: int = 0  # > 0 once the composite stream wrote its first chunk
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    def public(self) -> dict[str, Any]:
        return {"state": self.state, "recordingId": self.recording_id}


class RecordingControl:
    """Cloud recordings of this process's live rooms (see the module doc). ``launcher`` may be replaced
    (tests) or None (no recorders on this node: every start is ``unavailable``)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock,
                 node_id: str, launcher: RecorderLauncher | None, wakeup: asyncio.Event) -> None:
        self._sessionmaker = sessionmaker
        self.settings = settings
        self.clock = clock
        self.node_id = node_id
        self.launcher = launcher
        self._wakeup = wakeup
        self.storage = LocalStorage(settings.data_dir / "recordings")
        self._rooms: dict[str, Active] = {}
        self._by_id: dict[str, Active] = {}
        self._listeners: dict[str, Notify] = {}
        self._alone: dict[str, asyncio.TimerHandle] = {}
        self._options: OrderedDict[str, service.RecordingOptions | None] = OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    # ------------------------------------------------------------------------------------- live rooms
    def attach(self, room_name: str, notify: Notify) -> None:
        """The live room of ``room_name`` on this node delivers this room's ``recording`` messages."""
        self._listeners[room_name] = notify

    def detach(self, room_name: str, notify: Notify) -> None:
        """Undo :meth:`attach` (only if ``notify`` is still the attached one)."""
        if self._listeners.get(room_name) is notify:
            del self._listeners[room_name]

    def _tell(self, room_name: str, state: str, recording_id: str | None, message: str | None = None,
              to: str | None = None) -> None:
        notify = self._listeners.get(room_name)
        if notify is None:
            return
        try:
            notify({"state": state, "recordingId": recording_id, "message": message}, to)
        except Exception:  # noqa: BLE001 - a room must never break the control
            log.exception("recording_notify_failed", room_name=room_name)

    def running(self) -> dict[str, int]:
        """Recordings this node runs, by state: ``{"starting": n, "recording": n}`` (for ``/metrics``)."""
        counts = {STARTING: 0, RECORDING: 0}
        for active in self._by_id.values():
            counts[active.state] = counts.get(active.state, 0) + 1
        return counts

    def state(self, room_name: str) -> dict[str, Any] | None:
        """``{"state": "starting"|"recording", "recordingId": id}`` of the room's running recording, or None."""
        active = self._rooms.get(room_name)
        return active.public() if active is not None else None

    async def _meeting_options(self, meeting_id: str) -> service.RecordingOptions | None:
        if meeting_id in self._options:
            self._options.move_to_end(meeting_id)
            return self._options[meeting_id]

        async def load(s: AsyncSession) -> service.RecordingOptions | None:
            meeting = await repository.meeting_by_id(s, meeting_id)
            return service.recording_options(meeting, self.settings.recording_default_file_format) if meeting else None

        options = await in_transaction(self._sessionmaker, load)
        self._options[meeting_id] = options  # a meeting's options never change (there is no update call)
        while len(self._options) > OPTIONS_CACHE:
            self._options.popitem(last=False)
        return options

    async def options(self, room: RoomLike) -> dict[str, str] | None:
        """The room's public recording options ``{"type", "startTrigger"}`` (never the destination), or None."""
        options = await self._meeting_options(room.meeting_id)
        return options.public() if options is not None else None

    # ------------------------------------------------------------------------------------------ start
    async def start(self, room: RoomLike, requested_by: str | None, trigger: str) -> str | None:
        """Start recording ``room`` (see the module doc). ``requested_by``: the host's participantId (None for
        a trigger); ``trigger``: manual | prompt | automatic | automatic-2nd-participant. Returns the
        recording id (the running one if there is one already), or None when it is unavailable."""
        running = self._rooms.get(room.room_name)
        if running is not None:
            if requested_by:
                self._tell(room.room_name, running.state, running.recording_id, to=requested_by)
            return running.recording_id
        to = requested_by or TO_HOSTS
        options = await self._meeting_options(room.meeting_id)
        if options is None or options.type != "cloud":
            self._tell(room.room_name, "unavailable", None, "Cloud recording is not enabled for this meeting", to)
            return None
        if trigger == "manual" and options.start_trigger == "prompt":
            trigger = "prompt"  # the page asked the host (startTrigger prompt) and the host said yes
        if self.launcher is None or self._closed:
            self._tell(room.room_name, "unavailable", None, "No recorder is available on this server", to)
            return None
        if getattr(self.launcher, "free", 1) <= 0:  # R2's pool says how many recorders are free
            self._tell(room.room_name, "unavailable", None, NO_FREE_RECORDER, to)
            return None
        active = Active(recording_id="", room_name=room.room_name, meeting_id=room.meeting_id, requested_by=requested_by)
        self._rooms[room.room_name] = active  # holds the room's place while the row is written
        try:
            created = await in_transaction(self._sessionmaker, lambda s: self._create(s, room, options, trigger, requested_by))
        except Exception:
            log.exception("recording_not_created", room_name=room.room_name)
            created = None
        if created is None:
            self._rooms.pop(room.room_name, None)
            self._tell(room.room_name, "unavailable", None, "This meeting cannot be recorded now", to)
            return None
        recording_id, page_url = created
        active.recording_id = recording_id
        self._by_id[recording_id] = active
        self._tell(room.room_name, STARTING, recording_id)  # launching a recorder may take seconds
        try:
            ok = await asyncio.wait_for(self.launcher.start(recording_id, page_url), LAUNCHER_TIMEOUT_SECONDS)
        except Exception:  # noqa: BLE001 - a launcher failure is an unavailable recorder
            log.exception("recorder_launch_failed", recording_id=recording_id)
            ok = False
        if not ok:
            self._forget(active)
            await in_transaction(self._sessionmaker, lambda s: self._discard(s, recording_id, "no_recorder"))
            self._wakeup.set()
            self._tell(room.room_name, FAILED, recording_id, "The recorder could not start; try again later")
            return None
        if active.stopping:  # stopped while the recorder was launched
            return recording_id
        if active.state == STARTING:  # no media yet
            self._timer(active, "start", self.settings.recording_start_timeout_seconds, "no_media")
        self._timer(active, "max", self.settings.recording_max_duration_seconds, "max_duration")
        log.info("recording_started", recording_id=recording_id, room_name=room.room_name, trigger=trigger)
        return recording_id

    async def _create(self, s: AsyncSession, room: RoomLike, options: service.RecordingOptions, trigger: str,
                      requested_by: str | None) -> tuple[str, str] | None:
        meeting = await repository.meeting_by_id(s, room.meeting_id)
        if meeting is None or room_state(meeting, self.clock.now()) != "live":
            return None
        now = self.clock.now()
        recording = await service.create_recording(s, meeting, options, trigger, requested_by, self.node_id, now)
        secret = self.settings.signing_key
        key = issue_room_key(secret, meeting.room_name, "recorder", meeting.end_date)
        token = service.issue_token(secret, recording.id, "ingest",
                                    service.ingest_token_expiry(now, self.settings.recording_max_duration_seconds))
        query = urlencode({"roomKey": key, "recorder": "1", "recordingId": recording.id, "ingestToken": token})
        return recording.id, f"{self.settings.public_url}{meeting.room_name}?{query}"

    async def _discard(self, s: AsyncSession, recording_id: str, reason: str) -> None:
        """A recording that never had media: deleted at once (its directory purged by the job)."""
        rec = await repository.get(s, recording_id, for_update=True)
        if rec is None:
            return
        now = self.clock.now()
        rec.state, rec.node_id, rec.stop_reason = FAILED, None, reason
        rec.error = "no media was received"
        rec.ended_at = rec.ended_at or now
        rec.deleted_at = rec.deleted_at or now

    def _timer(self, active: Active, name: str, seconds: float, reason: str) -> None:
        old = active.timers.pop(name, None)
        if old is not None:
            old.cancel()
        active.timers[name] = asyncio.get_running_loop().call_later(
            seconds, lambda: self._spawn(self._stop(active, reason)))

    def _cancel_timer(self, active: Active, name: str) -> None:
        timer = active.timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _forget(self, active: Active) -> None:
        for timer in active.timers.values():
            timer.cancel()
        active.timers.clear()
        if self._rooms.get(active.room_name) is active:
            del self._rooms[active.room_name]
        self._by_id.pop(active.recording_id, None)

    # ------------------------------------------------------------------------------------------- stop
    async def stop(self, room: RoomLike, reason: str) -> None:
        """Stop the room's running recording, if any (``reason``: stopped | ended | deleted | expired | empty
        ...); returns once it is ``processing`` (or discarded). Idempotent."""
        active = self._rooms.get(room.room_name)
        if active is not None and active.recording_id:
            await self._stop(active, reason)

    async def stop_recording(self, recording_id: str, reason: str) -> None:
        """Stop one recording by id if this node runs it (e.g. it was deleted through the API)."""
        active = self._by_id.get(recording_id)
        if active is not None:
            await self._stop(active, reason)

    async def _stop(self, active: Active, reason: str) -> None:
        if active.stopping:
            await active.stopped.wait()
            return
        active.stopping = True
        for timer in active.timers.values():
            timer.cancel()
        active.timers.clear()
        ended_at = self.clock.now()
        try:
            if self.launcher is not None:
                try:
                    await asyncio.wait_for(self.launcher.stop(active.recording_id), LAUNCHER_TIMEOUT_SECONDS)
                except Exception:  # noqa: BLE001 - stop what we can; the streams are closed below
                    log.exception("recorder_stop_failed", recording_id=active.recording_id)
            await self._close_streams(active)
            had_media = active.media_bytes > 0
            if had_media:
                await in_transaction(self._sessionmaker, lambda s: self._to_processing(s, active, ended_at, reason))
            else:
                await in_transaction(self._sessionmaker, lambda s: self._discard(s, active.recording_id, reason))
            self._wakeup.set()
            self._forget(active)
            self._tell(active.room_name, "stopped" if had_media else "failed", active.recording_id,
                       None if had_media else "The recorder sent no media")
            log.info("recording_stopped", recording_id=active.recording_id, reason=reason, media_bytes=active.media_bytes)
        finally:
            self._forget(active)
            active.stopped.set()

    async def _close_streams(self, active: Active) -> None:
        streams = [s for s in active.streams.values() if not s.closed.is_set()]
        if not streams:
            return
        waits = [asyncio.ensure_future(s.closed.wait()) for s in streams]
        _, pending = await asyncio.wait(waits, timeout=STOP_FLUSH_SECONDS)
        for task in pending:
            task.cancel()
        for stream in streams:
            if not stream.closed.is_set():
                if stream.kick is not None:
                    stream.kick()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(stream.closed.wait(), 2.0)
                await stream.close()

    async def _to_processing(self, s: AsyncSession, active: Active, ended_at: datetime, reason: str) -> None:
        rec = await repository.get(s, active.recording_id, for_update=True)
        if rec is None or rec.state not in LIVE_STATES:
            return
        rec.state, rec.node_id, rec.stop_reason = PROCESSING, None, reason
        rec.ended_at = max(ended_at, rec.started_at)
        for stream in active.streams.values():
            track = await repository.get_track(s, rec.id, stream.stream)
            if track is not None:
                track.ended_at = track.ended_at or ended_at

    # ------------------------------------------------------------------------------------- room events
    async def on_room_event(self, event: Any) -> None:
        """Subscriber of :class:`~herewith.rooms.events.RoomEvents`: start on ``automatic`` (a first person
        joined) and ``automatic-2nd-participant`` (a second one), and stop a recording whose room has had no
        one but recorders for ``recording_stop_grace_seconds``. Never raises, never waits for a recorder."""
        if event.type not in ("participant.joined", "participant.left"):
            return
        try:
            room = _Room(event.meeting_id, event.room_name)
            people = [p for p in event.participants if p.role_name not in NOT_PEOPLE]
            if event.type == "participant.joined" and event.participant.role_name in NOT_PEOPLE:
                return
            if people:
                timer = self._alone.pop(room.room_name, None)
                if timer is not None:
                    timer.cancel()
            if event.type == "participant.joined":
                if room.room_name in self._rooms:
                    return
                options = await self._meeting_options(room.meeting_id)
                if options is None or options.type != "cloud":
                    return
                needed = {"automatic": 1, "automatic-2nd-participant": 2}.get(options.start_trigger)
                if needed is not None and len(people) >= needed:
                    self._spawn(self.start(room, None, options.start_trigger))
            elif not people and room.room_name in self._rooms and room.room_name not in self._alone:
                self._alone[room.room_name] = asyncio.get_running_loop().call_later(
                    self.settings.recording_stop_grace_seconds, self._alone_expired, room)
        except Exception:  # noqa: BLE001 - subscribers must not raise
            log.exception("recording_room_event_failed", type=event.type, room_name=event.room_name)

    def _alone_expired(self, room: _Room) -> None:
        self._alone.pop(room.room_name, None)
        active = self._rooms.get(room.room_name)
        if active is not None and not active.recording_id:  # its row is still being written: look again soon
            self._alone[room.room_name] = asyncio.get_running_loop().call_later(1.0, self._alone_expired, room)
            return
        self._spawn(self.stop(room, "empty"))

    async def on_meeting_ended(self, meeting: Any, reason: str) -> None:
        """Subscriber of :class:`~herewith.meetings.events.MeetingEvents`: a deleted or deactivated meeting
        stops its recording (the file is kept and finalized)."""
        self._options.pop(meeting.id, None)
        await self.stop(_Room(meeting.id, meeting.room_name), reason)

    # ------------------------------------------------------------------------------------------ ingest
    async def open_stream(self, recording_id: str, token: str | None, stream: str | None,
                          mime: str | None) -> IngestStream:
        """Accept an ingest connection for ``stream`` of a recording this node runs. Raises
        :class:`~herewith.recordings.ingest.IngestRefused`: 4403 bad token, 4400 bad stream or mime, 4409
        not running here (unknown, stopped, or another node's). A stream that is connected already is
        replaced: its old connection is closed (4409) after its last write."""
        try:
            service.verify_token(self.settings.signing_key, token or "", recording_id, "ingest", self.clock.now())
        except service.InvalidToken as exc:
            raise IngestRefused(4403, str(exc)) from None
        stream, mime = check_stream(stream, mime)
        active = self._by_id.get(recording_id)
        if active is None or active.stopping:
            raise IngestRefused(4409, "this recording is not running on this server")
        old = active.streams.get(stream)
        if old is not None and not old.closed.is_set():
            # The recorder reconnected before this server saw its old socket go (a half-open connection):
            # the new one replaces it, after the old one's last write.
            if old.kick is not None:
                old.kick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(old.closed.wait(), 2.0)
            await old.close()
        ingest = IngestStream(self.storage.recording_dir(recording_id), stream, mime,
                              self.settings.recording_max_stream_bytes,
                              on_first_chunk=lambda: self._first_chunk(active, ingest))
        active.streams[stream] = ingest
        if ingest.is_composite:
            self._cancel_timer(active, "lost")
        await in_transaction(self._sessionmaker, lambda s: self._track_opened(s, recording_id, ingest))
        return ingest

    async def _track_opened(self, s: AsyncSession, recording_id: str, ingest: IngestStream) -> None:
        track = await repository.get_track(s, recording_id, ingest.stream)
        if track is None:
            s.add(RecordingTrack(recording_id=recording_id, stream=ingest.stream,
                                 kind="composite" if ingest.is_composite else "audio",
                                 participant_id=None if ingest.is_composite else ingest.stream,
                                 mime=ingest.mime, started_at=self.clock.now(), bytes_received=0))
        else:
            track.ended_at = None

    def _first_chunk(self, active: Active, ingest: IngestStream) -> None:
        if not ingest.is_composite:
            return
        active.media_bytes += ingest.bytes_written
        if active.state == STARTING and not active.stopping:
            active.state = RECORDING
            self._cancel_timer(active, "start")
            self._spawn(self._mark_recording(active))

    async def _mark_recording(self, active: Active) -> None:
        async def go(s: AsyncSession) -> None:
            rec = await repository.get(s, active.recording_id, for_update=True)
            if rec is not None and rec.state == STARTING:
                rec.state = RECORDING
                rec.started_at = self.clock.now()

        try:
            await in_transaction(self._sessionmaker, go)
        except Exception:  # noqa: BLE001 - the file is being written either way
            log.exception("recording_state_not_saved", recording_id=active.recording_id)
        if not active.stopping:
            self._tell(active.room_name, RECORDING, active.recording_id)

    def stream_meta(self, ingest: IngestStream, text: str, recording_id: str) -> None:
        """A text frame of a stream: ``{"type": "meta", "displayName": ...}`` names a participant's audio."""
        from herewith.recordings.ingest import parse_meta

        name = parse_meta(text)
        if name is None or ingest.is_composite:
            return
        ingest.display_name = name

        async def go(s: AsyncSession) -> None:
            track = await repository.get_track(s, recording_id, ingest.stream)
            if track is not None:
                track.display_name = name

        self._spawn(in_transaction(self._sessionmaker, go))

    async def on_recorder_lost(self, recording_id: str, reason: str) -> None:
        """The launcher's word that a recorder ended unasked and will not come back (R2's pool ``on_lost``):
        the recording stops with what was written."""
        log.warning("recorder_lost", recording_id=recording_id, reason=reason)
        await self.stop_recording(recording_id, "recorder_lost")

    async def stream_closed(self, recording_id: str, ingest: IngestStream) -> None:
        """An ingest connection ended (either side). A composite stream that ends without a stop leaves the
        recorder ``recording_recorder_lost_seconds`` to come back before the recording stops."""
        await ingest.close()
        active = self._by_id.get(recording_id)

        async def go(s: AsyncSession) -> None:
            track = await repository.get_track(s, recording_id, ingest.stream)
            if track is not None:
                track.bytes_received = (track.bytes_received or 0) + ingest.bytes_written
                track.ended_at = self.clock.now()

        try:
            await in_transaction(self._sessionmaker, go)
        except Exception:  # noqa: BLE001
            log.exception("recording_track_not_saved", recording_id=recording_id)
        if active is None or active.stopping or not ingest.is_composite:
            return
        if active.streams.get(ingest.stream) is ingest:
            self._timer(active, "lost", self.settings.recording_recorder_lost_seconds, "recorder_lost")

    # ---------------------------------------------------------------------------------------- shutdown
    async def close(self) -> None:
        """Shutdown: every running recording is stopped (it is finalized by the next process to run the
        recording job), then the launcher is closed."""
        self._closed = True
        for timer in self._alone.values():
            timer.cancel()
        self._alone.clear()
        actives = [a for a in list(self._rooms.values()) if a.recording_id]
        if actives:
            await asyncio.gather(*(self._stop(a, "shutdown") for a in actives), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.launcher is not None:
            try:
                await self.launcher.close()
            except Exception:  # noqa: BLE001
                log.exception("recorder_launcher_close_failed")
