"""Caption control: when a room's captioner starts and stops, the captioner processes, and the live transcript.

:class:`CaptionControl` is one per process (built by ``create_app``). It is the live rooms'
``RoomConfig.captions`` (:class:`herewith.signaling.live_room.CaptionControl`), a subscriber of room events
(triggers; the captioner's arrival; a room left to no one) and of meeting events (a deleted or deactivated
meeting stops its captions).

The meeting's ``liveTranscription`` (CONTRACT.md, "Meetings") decides:

- ``startTrigger`` ``none`` (or no ``liveTranscription``): no live transcription; a host asking is told
  ``captions {state: unavailable}``;
- ``manual``: a host starts and stops it (``captions_start`` / ``captions_stop``; only hosts, enforced by the
  live room);
- ``automatic``: it starts when the first person joins; ``automatic-2nd-participant``: when the second does
  (the recorder and the captioner are not people); hosts may still stop and start it;
- ``liveCaptions``: the captions are shown in the room (otherwise they are only stored);
- ``language``: the language decoded (None: the model's own choice; an English-only model decodes English).

A start launches a captioner process (:class:`CaptionerLauncher`, :mod:`herewith.captions.captioner`) with a
``captioner`` room key; the room hears ``captions {state: starting}`` and, once the captioner has joined,
``on``. At most ``live_captions_per_node`` rooms are captioned at once (each costs ``live_caption_workers``
decoder processes). A stop (host, room left to no one, call ended, meeting deleted or deactivated, shutdown)
ends the process: it finalizes its open utterances first (at most ``DRAIN_SECONDS``).

Final captions are kept per room session in memory (the room passes them to :meth:`caption`) and stored as a
``LIVE_TRANSCRIPTION`` transcription when the session ends (no person left in the room, or the call ended):
see :mod:`herewith.captions.service`. A crash of the server process loses the captions of the sessions it
had not stored yet (the call is over then too).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.auth.room_keys import issue_room_key
from herewith.captions import service
from herewith.config import Settings
from herewith.db.transactions import in_transaction
from herewith.kit.time import Clock
from herewith.meetings import repository as meetings
from herewith.rooms.service import room_state

log = structlog.get_logger(__name__)

NOT_PEOPLE = frozenset({"recorder", "streamer", "captioner"})
CAPTIONER = "captioner"
TO_HOSTS = "@hosts"
DRAIN_SECONDS = 5.0
OPTIONS_CACHE = 2048
STARTING, ON = "starting", "on"

Notify = Callable[[dict[str, Any], str | None], None]


class RoomLike(Protocol):
    @property
    def meeting_id(self) -> str: ...

    @property
    def room_name(self) -> str: ...


@dataclass(frozen=True)
class _Room:
    meeting_id: str
    room_name: str


class Launcher(Protocol):
    """What runs captioners: ``start(room_name, signal_url, room_key, options)`` (False: none could start),
    ``stop(room_name)`` (returns once the process has left), ``running(room_name)``, ``close()``."""

    async def start(self, room_name: str, signal_url: str, room_key: str, options: service.LiveOptions) -> bool: ...

    async def stop(self, room_name: str) -> None: ...

    def running(self, room_name: str) -> bool: ...

    async def close(self) -> None: ...


@dataclass(eq=False)
class Active:
    """A room whose captioner this node started and has not stopped yet."""

    room_name: str
    meeting_id: str
    state: str = STARTING
    stopping: bool = False
    timer: asyncio.TimerHandle | None = None


@dataclass
class SessionCaptions:
    """Final captions of one room session, in order, and when the session's captions began."""

    meeting_id: str
    room_name: str
    started_at: datetime
    lines: list[service.CaptionLine] = field(default_factory=list)


def signal_url(public_url: str, room_name: str) -> str:
    """The room WebSocket of ``room_name`` (leading slash) at ``public_url`` (http -> ws, https -> wss)."""
    base = public_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://"):]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://"):]
    return f"{base}/signal/{room_name.lstrip('/')}"


class CaptionerLauncher:
    """Captioner processes, one per captioned room (see :mod:`herewith.captions.captioner`): its own process
    group, a parent-death signal (a server that dies takes them along), its output in
    ``data_dir/captions/<room>.log``. ``on_exit(room_name, returncode)`` is called when one ends unasked."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.on_exit: Callable[[str, int], Awaitable[None] | None] | None = None
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._stopping: set[str] = set()

    def running(self, room_name: str) -> bool:
        proc = self.procs.get(room_name)
        return proc is not None and proc.returncode is None

    async def start(self, room_name: str, url: str, room_key: str, options: service.LiveOptions) -> bool:
        s = self.settings
        logdir = s.data_dir / "captions"
        logdir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "herewith.captions.captioner", "--signal-url", url,
                "--model", s.live_caption_model, "--cache-dir", str(s.data_dir / "models"),
                "--workers", str(s.live_caption_workers),
                "--drain-seconds", str(DRAIN_SECONDS)]
        if options.language:
            args += ["--language", options.language]
        for address in s.live_caption_ice_addresses:
            args += ["--ice-address", address]
        env = {**os.environ, "HEREWITH_CAPTIONER_KEY": room_key}
        logf = open(logdir / (room_name.strip("/").replace("/", "_") + ".log"), "ab")  # noqa: SIM115
        try:
            proc = await asyncio.create_subprocess_exec(
                *args, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=logf, stderr=logf,
                start_new_session=True, preexec_fn=_die_with_parent)
        finally:
            logf.close()
        self.procs[room_name] = proc
        self._watchers[room_name] = asyncio.ensure_future(self._watch(room_name, proc))
        return True

    async def _watch(self, room_name: str, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if self.procs.get(room_name) is proc:
            del self.procs[room_name]
        if room_name not in self._stopping and self.on_exit is not None:
            result = self.on_exit(room_name, code)
            if asyncio.iscoroutine(result):
                await result

    async def stop(self, room_name: str) -> None:
        proc = self.procs.get(room_name)
        if proc is None:
            return
        self._stopping.add(room_name)
        try:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)  # it finalizes its open utterances, then leaves
            try:
                await asyncio.wait_for(proc.wait(), DRAIN_SECONDS + 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        finally:
            self._stopping.discard(room_name)

    async def close(self) -> None:
        await asyncio.gather(*(self.stop(r) for r in list(self.procs)), return_exceptions=True)
        for task in self._watchers.values():
            task.cancel()


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class CaptionControl:
    """Live transcription of this process's rooms (see the module doc). ``launcher`` None: this node runs no
    captioners (the speech extra is not installed): every start is ``unavailable`` with ``unavailable_reason``."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock,
                 launcher: Launcher | None, unavailable_reason: str = "Live transcription is not available",
                 on_stored: Callable[[str], Awaitable[None] | None] | None = None, node_id: str | None = None) -> None:
        self._sessionmaker = sessionmaker
        self.node_id = node_id  # set: final captions are kept in the database as they come (crash safety)
        self._unsaved: list[service.KeptLine] = []
        self._saver: asyncio.Task[None] | None = None
        self.settings = settings
        self.clock = clock
        self.launcher = launcher
        self.unavailable_reason = unavailable_reason
        self.on_stored = on_stored
        self._rooms: dict[str, Active] = {}
        self._sessions: dict[str, SessionCaptions] = {}
        self._listeners: dict[str, Notify] = {}
        self._options: OrderedDict[str, service.LiveOptions | None] = OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        if launcher is not None and hasattr(launcher, "on_exit"):
            launcher.on_exit = self._captioner_exited

    # ------------------------------------------------------------------------------------- live rooms
    def attach(self, room_name: str, notify: Notify) -> None:
        self._listeners[room_name] = notify

    def detach(self, room_name: str, notify: Notify) -> None:
        if self._listeners.get(room_name) is notify:
            del self._listeners[room_name]

    def _tell(self, room_name: str, state: str, message: str | None = None, to: str | None = None) -> None:
        notify = self._listeners.get(room_name)
        if notify is None:
            return
        try:
            notify({"state": state, "message": message}, to)
        except Exception:  # noqa: BLE001 - a room must never break the control
            log.exception("captions_notify_failed", room_name=room_name)

    def state(self, room_name: str) -> str | None:
        active = self._rooms.get(room_name)
        return active.state if active is not None and not active.stopping else None

    async def _meeting_options(self, meeting_id: str) -> service.LiveOptions | None:
        if meeting_id in self._options:
            self._options.move_to_end(meeting_id)
            return self._options[meeting_id]

        async def load(s: AsyncSession) -> service.LiveOptions | None:
            meeting = await meetings.get_by_id(s, meeting_id)
            return service.live_options(meeting) if meeting is not None else None

        options = await in_transaction(self._sessionmaker, load)
        self._options[meeting_id] = options  # a meeting's options never change (there is no update call)
        while len(self._options) > OPTIONS_CACHE:
            self._options.popitem(last=False)
        return options

    async def options(self, room: RoomLike) -> dict[str, Any] | None:
        """``{"startTrigger", "liveCaptions", "language"}`` of the meeting's live transcription, or None."""
        options = await self._meeting_options(room.meeting_id)
        return options.public() if options is not None and options.enabled else None

    # ------------------------------------------------------------------------------------- start / stop
    async def start(self, room: RoomLike, requested_by: str | None, trigger: str) -> None:
        """Start the room's captioner (see the module doc). Never raises."""
        to = requested_by or TO_HOSTS
        if room.room_name in self._rooms:
            active = self._rooms[room.room_name]
            if requested_by and not active.stopping:
                self._tell(room.room_name, active.state, to=requested_by)
            return
        try:
            options = await self._meeting_options(room.meeting_id)
        except Exception:  # noqa: BLE001
            log.exception("captions_options_failed", room_name=room.room_name)
            options = None
        if options is None or not options.enabled:
            self._tell(room.room_name, "unavailable", "Live transcription is not enabled for this meeting", to)
            return
        if self.launcher is None or self._closed:
            self._tell(room.room_name, "unavailable", self.unavailable_reason, to)
            return
        if sum(1 for a in self._rooms.values() if not a.stopping) >= self.settings.live_captions_per_node:
            self._tell(room.room_name, "unavailable", "No captioner is free right now; try again later", to)
            return
        active = Active(room.room_name, room.meeting_id)
        self._rooms[room.room_name] = active
        try:
            key = await in_transaction(self._sessionmaker, lambda s: self._room_key(s, room))
            ok = key is not None and await self.launcher.start(
                room.room_name, signal_url(self.settings.public_url, room.room_name), key, options)
        except Exception:  # noqa: BLE001 - a launcher failure is an unavailable captioner
            log.exception("captioner_launch_failed", room_name=room.room_name)
            ok = False
        if not ok:
            self._forget(active)
            self._tell(room.room_name, "failed", "The captioner could not start; try again later", to)
            return
        self._session(room)
        self._tell(room.room_name, STARTING)
        active.timer = asyncio.get_running_loop().call_later(
            self.settings.live_caption_start_timeout_seconds, lambda: self._spawn(self._start_timed_out(active)))
        log.info("captions_started", room_name=room.room_name, trigger=trigger)

    async def _room_key(self, s: AsyncSession, room: RoomLike) -> str | None:
        meeting = await meetings.get_by_id(s, room.meeting_id)
        if meeting is None or room_state(meeting, self.clock.now()) != "live":
            return None
        return issue_room_key(self.settings.signing_key, meeting.room_name, CAPTIONER, meeting.end_date)

    def _session(self, room: RoomLike) -> SessionCaptions:
        session = self._sessions.get(room.room_name)
        if session is None:
            session = SessionCaptions(room.meeting_id, room.room_name, self.clock.now())
            self._sessions[room.room_name] = session
        return session

    async def _start_timed_out(self, active: Active) -> None:
        if active.state == STARTING and self._rooms.get(active.room_name) is active:
            log.warning("captioner_never_joined", room_name=active.room_name)
            await self._stop(active, "start_timeout", failed=True)

    async def stop(self, room: RoomLike, reason: str) -> None:
        """Stop the room's captioner, if any; the session's captions are stored when the session is over
        (``reason`` ended | deleted | expired | empty | shutdown), kept for later otherwise (a host's stop).
        Idempotent; never raises."""
        active = self._rooms.get(room.room_name)
        if active is not None:
            await self._stop(active, reason)
        if reason != "stopped":
            await self._store(room.room_name)

    async def _stop(self, active: Active, reason: str, failed: bool = False) -> None:
        if active.stopping:
            return
        active.stopping = True
        if active.timer is not None:
            active.timer.cancel()
        try:
            if self.launcher is not None:
                await self.launcher.stop(active.room_name)
        except Exception:  # noqa: BLE001
            log.exception("captioner_stop_failed", room_name=active.room_name)
        finally:
            self._forget(active)
        self._tell(active.room_name, "failed" if failed else "stopped",
                   "The captioner did not join" if failed else None)
        log.info("captions_stopped", room_name=active.room_name, reason=reason)

    def _forget(self, active: Active) -> None:
        if self._rooms.get(active.room_name) is active:
            del self._rooms[active.room_name]

    async def _captioner_exited(self, room_name: str, code: int) -> None:
        """A captioner process ended unasked (it crashed, or the room closed its socket)."""
        active = self._rooms.get(room_name)
        if active is None or active.stopping:
            return
        log.warning("captioner_exited", room_name=room_name, returncode=code)
        self._forget(active)
        if active.timer is not None:
            active.timer.cancel()
        self._tell(room_name, "failed", "Live captions stopped unexpectedly")

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---------------------------------------------------------------------------------------- captions
    def caption(self, room: RoomLike, participant_id: str, display_name: str | None, text: str,
                utterance_id: str, at: datetime) -> None:
        """One final caption of the room (relayed by the live room): kept for the session's transcript."""
        session = self._session(room)
        line = service.CaptionLine(at=at, participant_id=participant_id, display_name=display_name, text=text)
        session.lines.append(line)
        if len(session.lines) > service.MAX_LINES:  # a runaway session keeps its newest lines
            del session.lines[0]
        if self.node_id is not None:
            self._unsaved.append(service.KeptLine(session.meeting_id, session.room_name, session.started_at, line))
            if self._saver is None or self._saver.done():
                self._saver = asyncio.ensure_future(self._save())

    async def _save(self) -> None:
        """Write the captions relayed since the last write, in one transaction per batch, until none is left.
        A failed write is logged: the lines are still in memory and stored at the session's end."""
        assert self.node_id is not None
        node_id = self.node_id
        while self._unsaved:
            batch, self._unsaved = self._unsaved, []
            try:
                await in_transaction(self._sessionmaker, lambda s: service.keep_caption_lines(s, node_id, batch))
            except Exception:  # noqa: BLE001 - the live room goes on; the session's end stores from memory
                log.exception("caption_lines_not_kept", lines=len(batch))

    async def _saves_done(self) -> None:
        saver = self._saver
        if saver is not None and not saver.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(saver)

    async def _store(self, room_name: str) -> None:
        session = self._sessions.pop(room_name, None)
        if session is None or not session.lines:
            return
        await self._saves_done()  # then the kept rows of this session are all written, and deleted with the store

        async def store(s: AsyncSession) -> str | None:
            transcription_id = await service.store_live_transcription(
                s, session.meeting_id, session.room_name, session.started_at, self.clock.now(), session.lines,
                self.clock.now(), self.settings)
            if self.node_id is not None:
                await service.forget_caption_lines(s, self.node_id, session.room_name, session.started_at)
            return transcription_id

        try:
            transcription_id = await in_transaction(self._sessionmaker, store)
        except Exception:  # noqa: BLE001
            log.exception("live_transcription_not_stored", room_name=room_name, lines=len(session.lines))
            return
        log.info("live_transcription_stored", room_name=room_name, transcription_id=transcription_id,
                 lines=len(session.lines))
        if self.on_stored is not None and transcription_id is not None:
            result = self.on_stored(transcription_id)
            if asyncio.iscoroutine(result):
                await result

    # ------------------------------------------------------------------------------------- room events
    async def on_room_event(self, event: Any) -> None:
        """Subscriber of :class:`~herewith.rooms.events.RoomEvents`: triggers (``automatic``,
        ``automatic-2nd-participant``), the captioner's arrival (``on``), and the end of a room session (no
        person left: the captioner stops and the captions are stored). Never raises."""
        if event.type not in ("participant.joined", "participant.left"):
            return
        try:
            room = _Room(event.meeting_id, event.room_name)
            people = [p for p in event.participants if p.role_name not in NOT_PEOPLE]
            role = event.participant.role_name
            if event.type == "participant.joined" and role == CAPTIONER:
                active = self._rooms.get(room.room_name)
                if active is not None and active.state == STARTING and not active.stopping:
                    active.state = ON
                    if active.timer is not None:
                        active.timer.cancel()
                    self._tell(room.room_name, ON)
                return
            if event.type == "participant.joined" and role not in NOT_PEOPLE:
                if room.room_name in self._rooms:
                    return
                options = await self._meeting_options(room.meeting_id)
                if options is None or not options.enabled:
                    return
                needed = {"automatic": 1, "automatic-2nd-participant": 2}.get(options.start_trigger)
                if needed is not None and len(people) >= needed:
                    self._spawn(self.start(room, None, options.start_trigger))
            elif event.type == "participant.left" and not people and role not in NOT_PEOPLE:
                self._spawn(self.stop(room, "empty"))
        except Exception:  # noqa: BLE001 - subscribers must not raise
            log.exception("captions_room_event_failed", type=event.type, room_name=event.room_name)

    async def on_meeting_ended(self, meeting: Any, reason: str) -> None:
        """Subscriber of :class:`~herewith.meetings.events.MeetingEvents`: captions stop and are stored."""
        self._options.pop(meeting.id, None)
        await self.stop(_Room(meeting.id, meeting.room_name), reason)

    # ---------------------------------------------------------------------------------------- shutdown
    async def close(self) -> None:
        """Shutdown: every captioner stops and every session's captions are stored."""
        self._closed = True
        for active in list(self._rooms.values()):
            await self._stop(active, "shutdown")
        for room_name in list(self._sessions):
            await self._store(room_name)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.launcher is not None:
            with contextlib.suppress(Exception):
                await self.launcher.close()


def create_caption_control(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock,
                           on_stored: Callable[[str], Awaitable[None] | None] | None = None,
                           node_id: str | None = None) -> CaptionControl:
    """The process's control: with a :class:`CaptionerLauncher` when the speech extra is installed (and
    ``live_captions_per_node`` > 0), else one that answers ``unavailable`` with the reason (the captions a
    captioner of another kind sends are still stored). ``on_stored(transcription_id)``: after a session's
    captions were stored (e.g. wake the webhook delivery). ``node_id``: this process's node (final captions are
    then kept in the database as they come, herewith.captions.models)."""
    missing = service.missing_speech_dependencies()
    if missing:
        reason = ("Live transcription needs the speech extra on the server (pip install 'herewith[speech]'); "
                  f"missing: {', '.join(missing)}")
        return CaptionControl(sessionmaker, settings, clock, None, reason, on_stored, node_id)
    if settings.live_captions_per_node <= 0:
        return CaptionControl(sessionmaker, settings, clock, None, "Live transcription is turned off on this server",
                              on_stored, node_id)
    return CaptionControl(sessionmaker, settings, clock, CaptionerLauncher(settings), on_stored=on_stored,
                          node_id=node_id)


__all__ = ["CaptionControl", "CaptionerLauncher", "create_caption_control", "signal_url"]
