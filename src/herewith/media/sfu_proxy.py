"""The SFU proxy: one participant's Janus session, held by the Herewith process that holds its WebSocket.

The browser never talks to Janus's API (docs/janus-notes.md, "Design"). It keeps two peer connections whose
media flows directly to Janus, and signals both through the room WebSocket:

* **publisher** (the browser offers): ``sfu_publish {sdp, sources}`` -> VideoRoom ``join`` (ptype publisher,
  ``display`` = participantId, ``token`` = the participant's publish token, none for viewers) then
  ``publish`` (first time) or ``configure`` (renegotiation) -> ``sfu_published {sdp}``. A viewer has no
  token, so Janus itself refuses its join (433); the refusal goes back as ``error sfu_refused``.
* **subscriber** (Janus offers): the server decides what each participant receives (every stream of every
  other publisher of the room, from its :class:`FeedRoom`'s feed registry) and keeps
  one multistream subscriber handle per participant in step with it (``join`` ptype subscriber, then
  ``update`` with ``subscribe``/``unsubscribe``). Each Janus offer goes out as ``sfu_offer {sdp,
  subscription, streams}``; the browser's ``sfu_answer`` goes back with ``start``.
* ``sfu_candidate {pc, ...}`` trickles to the matching handle.

When the session is lost (Janus restarted or unreachable) the peer waits for the room to exist again
(:meth:`FeedRoom.open_session`), opens a new session and sends ``sfu_restart``: the browser drops both
connections and publishes again; the subscriber connection is rebuilt by the server.

:class:`FeedRoom` is what a peer needs of its room; :class:`~herewith.media.group_rooms.GroupRoom`
implements it (this module does not import that one: imports run from the room to its peers).

Usage (by :class:`~herewith.media.group_rooms.GroupRoom`)::

    peer = SfuPeer(room, participant_id, send_text, token=token)
    peer.start()
    peer.deliver(parsed_sfu_message)
    await peer.close("left")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import BaseModel

from herewith.kit.sdp import parse_sdp
from herewith.media.selection import simulcast_layer
from herewith.media.janus import (
    JanusError,
    JanusHandle,
    JanusSession,
    JanusSessionLost,
    JanusUnavailable,
)
from herewith.signaling import protocol as p

__all__ = ["FeedRoom", "SfuPeer", "sdp_media_sections"]

log = logging.getLogger(__name__)

Json = dict[str, Any]

SLOWLINK_HOLD = 10.0  # seconds a subscriber stays one simulcast layer lower after Janus reported losses to it
# After a subscriber's layer goes up, Janus switches at the new layer's next keyframe. Its own keyframe request
# (PLI) on the change is dropped when another went to that publisher less than a second before (a new
# subscriber's, a lower layer's), and Chromium sends a layer's keyframes only when asked: the switch then never
# happens (seen: 40 s on the low layer). So the server asks the publisher itself, at these delays (s).
KEYFRAME_ASKS = (0.2, 1.2, 3.0)
ANSWER_TIMEOUT = 10.0  # seconds a participant has to answer an sfu_offer (then a new subscription starts)
READY_TIMEOUT = 20.0  # seconds an sfu_publish waits for the participant's Janus session


def sdp_media_sections(sdp: str) -> list[tuple[str, str, str]]:
    """``[(mid, kind, direction)]`` of the audio/video m-lines of a publisher's SDP that are not rejected
    (:func:`herewith.kit.sdp.parse_sdp`); ``mid`` is "" when absent, ``direction`` the effective one."""
    return [(m.mid or "", m.kind, m.direction) for m in parse_sdp(sdp).media
            if m.kind in ("audio", "video") and not m.rejected]


class FeedRoom(Protocol):
    """What an :class:`SfuPeer` needs of its group room: the Janus room, and the registry of who publishes.

    ``room_id``: the Janus VideoRoom id. ``open_session(check=...)`` makes sure the Janus room exists
    (``check``: ask Janus, after a lost session) and opens a new Janus session on its instance; raises
    :class:`JanusError` / :class:`JanusUnavailable`. ``janus_restarted``: set when the local Janus this
    process supervises has restarted (None without one). ``kick(feed_id)`` removes a publisher from the
    Janus room. ``request_keyframe(feed_id)`` asks a publisher for a keyframe. ``feed_changed`` / ``feed_gone(participant_id)``: a peer's published streams changed or
    ended (the others resubscribe). ``wanted_streams(participant_id)``: ``{(feed_id, mid)}`` the
    participant should receive; ``live_feed_ids()``: the feeds publishing now. ``talking(participant_id,
    talking, level)``: Janus's talking event for a peer's audio. ``view_changed(participant_id)``: the peer
    reported what its grid shows.
    """

    @property
    def room_id(self) -> int: ...

    @property
    def janus_restarted(self) -> asyncio.Event | None: ...

    async def open_session(self, *, check: bool) -> JanusSession: ...

    async def kick(self, feed_id: int) -> None: ...

    async def request_keyframe(self, feed_id: int) -> None: ...

    def feed_changed(self, participant_id: str) -> None: ...

    def feed_gone(self, participant_id: str) -> None: ...

    def wanted_streams(self, participant_id: str) -> set[tuple[int, str]]: ...

    def live_feed_ids(self) -> set[int]: ...

    def talking(self, participant_id: str, talking: bool, level: float | None) -> None: ...

    def view_changed(self, participant_id: str) -> None: ...


class SfuPeer:
    """One participant's Janus session: a publisher handle (if it publishes) and a subscriber handle.

    ``send`` takes a JSON text frame for the participant's WebSocket. ``token`` is the participant's entry
    in the Janus room's ``allowed`` list (None for viewers). Every method runs on the server's event loop.
    """

    def __init__(self, room: FeedRoom, participant_id: str, send: Callable[[str], None], *, token: str | None) -> None:
        self.room = room
        self.id = participant_id
        self._send_text = send
        self.token = token
        self.session: JanusSession | None = None
        self.ready = asyncio.Event()  # a live session exists
        self.closing = False
        self.generation = 0  # +1 per (re)connected session
        # publisher
        self.pub: JanusHandle | None = None
        self.feed_id: int | None = None
        self.publishing = False
        self.live = False  # webrtcup seen: subscribers may ask for the feed
        self.streams: dict[str, tuple[str, str]] = {}  # publisher mid -> (kind, source), accepted by Janus
        # subscriber
        self.sub: JanusHandle | None = None
        self.subscription = 0
        self.subscribed: set[tuple[int, str]] = set()
        self.sub_streams: dict[str, Json] = {}  # subscriber mid -> Janus stream info
        self._janus_offers: deque[tuple[Json, Json]] = deque()
        # what the page's grid shows ((participant id, source) -> (width, height) in device pixels); None until
        # the page reports it (sfu_view): then the peer receives every stream
        self.view: dict[tuple[str, str], tuple[int, int]] | None = None
        self.layers: dict[tuple[str, int], int] = {}  # (subscriber mid, feed id) -> simulcast substream asked
        self.layer_cap = 2  # lowered for SLOWLINK_HOLD seconds after each slowlink on the subscriber
        self._cap_timer: asyncio.TimerHandle | None = None
        self._answer: asyncio.Future[str] | None = None
        self._sub_wake = asyncio.Event()
        # inbox of client messages, handled in order
        self._inbox: asyncio.Queue[p.SfuClientMessage] = asyncio.Queue()
        self._tasks: list[asyncio.Task[Any]] = []
        self._handle_tasks: list[asyncio.Task[Any]] = []

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background; the inbox and the subscription loop start at once."""
        self._tasks = [
            asyncio.create_task(self._connect_loop(first=True), name=f"sfu-connect-{self.id}"),
            asyncio.create_task(self._inbox_loop(), name=f"sfu-inbox-{self.id}"),
            asyncio.create_task(self._sub_loop(), name=f"sfu-sub-{self.id}"),
        ]

    def send(self, message: BaseModel) -> None:
        """Send one server message (:mod:`herewith.signaling.protocol`) to the participant."""
        self._send_text(p.dump(message))

    def error(self, code: p.ErrorCode, message: str, ref: str | None) -> None:
        self.send(p.error(code, message, ref))

    async def _connect_loop(self, *, first: bool) -> None:
        """Make sure the room exists on Janus, open a session, then watch it; reconnect when it is lost."""
        delay = 0.2
        while not self.closing:
            try:
                session = await self.room.open_session(check=not first)
            except (JanusError, JanusUnavailable, OSError) as exc:
                log.warning("sfu peer %s: Janus not ready (%s); retrying", self.id, exc)
                await self._retry_pause(delay)
                delay = min(delay * 2, 2.0)
                continue
            if self.closing:
                await session.destroy()
                return
            self.session = session
            self.generation += 1
            self.ready.set()
            delay = 0.2
            if not first:
                self.send(p.SfuRestart())
            first = False
            self._sub_wake.set()
            await session.lost.wait()
            if self.closing:
                return
            log.warning("sfu peer %s: Janus session lost (%s); reconnecting", self.id, session.lost_reason)
            self._reset_media_state()
            await asyncio.sleep(0.1)

    async def _retry_pause(self, delay: float) -> None:
        """Wait before the next connection attempt: ``delay``, or less when the local Janus this process
        supervises comes back first (its restart takes well under a second; no need to sit out the backoff)."""
        await asyncio.sleep(min(delay, 0.1))
        restarted = self.room.janus_restarted
        if restarted is None or delay <= 0.1:
            await asyncio.sleep(max(delay - 0.1, 0))
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay - 0.1):
                await restarted.wait()

    def _reset_media_state(self) -> None:
        self.ready.clear()
        self.session = None
        for task in self._handle_tasks:
            task.cancel()
        self._handle_tasks.clear()
        self.pub = self.sub = None
        self.feed_id = None
        self.publishing = self.live = False
        self.streams = {}
        self.subscribed = set()
        self.sub_streams = {}
        self.layers = {}
        self._janus_offers.clear()
        if self._answer is not None and not self._answer.done():
            self._answer.cancel()
        self.room.feed_gone(self.id)

    async def close(self, reason: str) -> None:
        """The participant left (``left``, ``disconnected``, ``removed``, ``ended``): kick its publisher,
        revoke its token and destroy its Janus session (every handle goes with it). Idempotent."""
        if self.closing:
            return
        self.closing = True
        current = asyncio.current_task()
        for task in [*self._tasks, *self._handle_tasks]:
            if task is not current:
                task.cancel()
        if self._cap_timer is not None:
            self._cap_timer.cancel()
        self.room.feed_gone(self.id)
        session = self.session
        if session is not None and not session.lost.is_set():
            if self.feed_id is not None and reason == "removed":
                with contextlib.suppress(JanusError, JanusUnavailable):
                    await self.room.kick(self.feed_id)
            await session.destroy()
        self.session = None
        self.ready.clear()

    # -- client messages -----------------------------------------------------------------------------
    def deliver(self, msg: p.SfuClientMessage) -> None:
        """Queue one parsed ``sfu_*`` message; answers resolve at once, the rest run in order."""
        if msg.type == "sfu_answer":
            if self._answer is not None and not self._answer.done():
                self._answer.set_result(msg.sdp)
            return
        if msg.type == "sfu_view":  # only the latest view matters: no queue
            self.view = {(t.participantId, t.source): (t.width, t.height) for t in msg.tiles}
            self.room.view_changed(self.id)
            return
        self._inbox.put_nowait(msg)

    async def _inbox_loop(self) -> None:
        while True:
            msg = await self._inbox.get()
            try:
                if msg.type == "sfu_publish":
                    await self._publish(msg)
                elif msg.type == "sfu_unpublish":
                    await self._unpublish()
                elif msg.type == "sfu_candidate":
                    await self._candidate(msg)
            except asyncio.CancelledError:
                raise
            except JanusError as exc:
                self.error(p.ErrorCode.SFU_REFUSED, f"Janus refused {msg.type}: {exc.code} {exc.reason}", msg.type)
            except (JanusUnavailable, TimeoutError) as exc:
                self.error(p.ErrorCode.SFU_UNAVAILABLE, f"The SFU is not reachable: {exc}", msg.type)
            except Exception:  # noqa: BLE001 - one message must not stop the inbox
                log.exception("sfu peer %s: %s failed", self.id, msg.type)
                self.error(p.ErrorCode.INTERNAL, "Internal error", msg.type)

    async def _session(self) -> JanusSession:
        async with asyncio.timeout(READY_TIMEOUT):
            await self.ready.wait()
        assert self.session is not None
        return self.session

    async def _publish(self, msg: p.SfuPublish) -> None:
        session = await self._session()
        if self.pub is None:
            handle = await session.attach(opaque_id=self.id)
            join: Json = {"request": "join", "ptype": "publisher", "room": self.room.room_id, "display": self.id}
            if self.token:
                join["token"] = self.token
            try:
                data, _ = await handle.message(join)
            except BaseException:
                await handle.detach()
                raise
            self.pub, self.feed_id = handle, int(data["id"])
            self._handle_tasks.append(asyncio.create_task(self._pub_events(handle), name=f"sfu-pub-{self.id}"))
        offered = sdp_media_sections(msg.sdp)
        body: Json = {"request": "configure" if self.publishing else "publish"}
        descriptions = [{"mid": mid, "description": msg.sources.get(mid, "camera")} for mid, kind, _ in offered
                        if kind == "video"]
        if descriptions:
            body["descriptions"] = descriptions
        data, jsep = await self.pub.message(body, {"type": "offer", "sdp": msg.sdp})
        if jsep is None:
            raise JanusError(0, "Janus sent no answer")
        self.publishing = True
        self.streams = {}
        sending = {mid for mid, _, direction in offered if direction in ("sendrecv", "sendonly")}
        for s in data.get("streams") or []:
            mid = str(s.get("mid"))
            if s.get("disabled") or mid not in sending:
                continue
            self.streams[mid] = (str(s.get("type")), msg.sources.get(mid, "camera"))
        self.send(p.SfuPublished(sdp=jsep["sdp"]))
        if self.live:
            self.room.feed_changed(self.id)

    async def _unpublish(self) -> None:
        if self.pub is None or not self.publishing:
            return
        self.publishing = self.live = False
        self.streams = {}
        self.room.feed_gone(self.id)
        with contextlib.suppress(JanusError):
            await self.pub.message({"request": "unpublish"})

    async def _candidate(self, msg: p.SfuCandidate) -> None:
        handle = self.pub if msg.pc == "publisher" else self.sub
        if handle is None or handle.closed:
            return
        if msg.candidate:
            cand: Json = {"candidate": msg.candidate, "sdpMid": msg.sdpMid, "sdpMLineIndex": msg.sdpMLineIndex}
            await handle.trickle({k: v for k, v in cand.items() if v is not None})
        else:
            await handle.trickle(None)

    # -- Janus events -------------------------------------------------------------------------------
    async def _pub_events(self, handle: JanusHandle) -> None:
        while not handle.closed:
            ev = await handle.events.get()
            kind = ev.get("janus")
            if kind == "webrtcup" and self.publishing:
                self.live = True
                self.room.feed_changed(self.id)
            elif kind in ("hangup", "detached"):
                self.live = self.publishing = False
                self.streams = {}
                self.room.feed_gone(self.id)
                if kind == "detached":
                    return
            elif kind == "event":
                # Janus tells every publisher of the room who talks; each peer reports only its own feed
                data = (ev.get("plugindata") or {}).get("data") or {}
                what = data.get("videoroom")
                if what in ("talking", "stopped-talking") and data.get("id") == self.feed_id:
                    level = data.get("audio-level-dBov-avg")
                    self.room.talking(self.id, what == "talking", float(level) if level is not None else None)

    async def _sub_events(self, handle: JanusHandle) -> None:
        while not handle.closed:
            ev = await handle.events.get()
            if ev.get("janus") == "slowlink" and ev.get("media", "video") == "video":
                self._slowlink()
                continue
            if ev.get("janus") != "event":
                continue
            data = (ev.get("plugindata") or {}).get("data") or {}
            jsep = ev.get("jsep")
            if jsep and jsep.get("type") == "offer":  # Janus renegotiates on its own (a publisher left)
                self._janus_offers.append((data, jsep))
                self._sub_wake.set()
            elif data.get("streams"):
                self._merge_streams(data["streams"])

    # -- subscriptions ------------------------------------------------------------------------------
    async def _sub_loop(self) -> None:
        while True:
            await self._sub_wake.wait()
            self._sub_wake.clear()
            if self.session is None or self.closing:
                continue
            generation = self.generation
            try:
                await self._sync_subscriptions()
                await self._apply_layers()
            except asyncio.CancelledError:
                raise
            except (JanusSessionLost, JanusUnavailable):
                continue  # the connect loop reconnects and wakes us
            except (JanusError, TimeoutError) as exc:
                if generation != self.generation or self.closing:
                    continue
                log.warning("sfu peer %s: subscription failed (%r); starting a new one", self.id, exc, exc_info=True)
                await self._drop_subscriber()
                await asyncio.sleep(0.5)
                self._sub_wake.set()

    async def _drop_subscriber(self) -> None:
        sub, self.sub = self.sub, None
        self.subscribed = set()
        self.sub_streams = {}
        self._janus_offers.clear()
        if sub is not None:
            with contextlib.suppress(JanusError, JanusUnavailable):
                await sub.detach()

    async def _sync_subscriptions(self) -> None:
        while self._janus_offers:
            await self._negotiate(*self._janus_offers.popleft())
        desired = self.room.wanted_streams(self.id)
        existing = self.room.live_feed_ids()
        # streams of feeds that went away were dropped by Janus itself (it renegotiates on its own)
        self.subscribed = {s for s in self.subscribed if s[0] in existing}
        if self.sub is None:
            if not desired:
                return
            session = await self._session()
            handle = await session.attach(opaque_id=self.id)
            self.sub = handle
            self.subscription += 1
            self._handle_tasks.append(asyncio.create_task(self._sub_events(handle), name=f"sfu-sub-ev-{self.id}"))
            body: Json = {"request": "join", "ptype": "subscriber", "room": self.room.room_id,
                          "streams": [{"feed": f, "mid": m} for f, m in sorted(desired)]}
            data, jsep = await handle.message(body)
            self.subscribed = set(desired)
            if jsep is not None:
                await self._negotiate(data, jsep)
            return
        add, remove = desired - self.subscribed, self.subscribed - desired
        if not add and not remove:
            return
        body = {"request": "update"}
        if add:
            body["subscribe"] = [{"feed": f, "mid": m} for f, m in sorted(add)]
        if remove:
            body["unsubscribe"] = [{"feed": f, "mid": m} for f, m in sorted(remove)]
        data, jsep = await self.sub.message(body)
        self.subscribed = set(desired)
        if jsep is not None:
            await self._negotiate(data, jsep)
        elif data.get("streams"):
            self._merge_streams(data["streams"])
        if self._janus_offers:
            self._sub_wake.set()

    def _merge_streams(self, streams: list[Json]) -> None:
        """Janus's events list streams with the fields it has at hand: merge them per mid (an inactive
        stream loses its feed; a reused mid gets the new feed's fields)."""
        for s in streams:
            entry = self.sub_streams.setdefault(str(s.get("mid")), {})
            if s.get("active") is False:
                entry.clear()
            entry.update(s)

    def _stream_list(self) -> list[p.SfuStream]:
        out = []
        for mid, s in sorted(self.sub_streams.items(), key=lambda kv: int(kv[1].get("mindex", 0))):
            kind = str(s.get("type", ""))
            if kind not in ("audio", "video"):
                continue
            active = bool(s.get("active", True)) and s.get("feed_id") is not None
            out.append(p.SfuStream(
                mid=mid, participantId=s.get("feed_display") if active else None, kind=kind,
                source=str(s.get("feed_description") or "camera") if active else "camera", active=active,
            ))
        return out

    async def _negotiate(self, data: Json, jsep: Json) -> None:
        """Send Janus's offer to the participant, wait for its answer and hand it to Janus (``start``)."""
        if data.get("streams"):
            self._merge_streams(data["streams"])
        sub = self.sub
        if sub is None:
            return
        self._answer = asyncio.get_running_loop().create_future()
        self.send(p.SfuOffer(sdp=jsep["sdp"], subscription=self.subscription, streams=self._stream_list()))
        async with asyncio.timeout(ANSWER_TIMEOUT):
            sdp = await self._answer
        self._answer = None
        await sub.message({"request": "start"}, {"type": "answer", "sdp": sdp})

    async def _apply_layers(self) -> None:
        """Ask Janus for the simulcast layer each shown video needs (``configure`` with ``substream`` per
        subscriber mid; ``temporal`` 2 = every frame): from its tile's height in the view
        (:func:`~herewith.media.selection.simulcast_layer`), capped while the connection reports losses.
        Streams without simulcast (aiortc, screen shares) ignore it."""
        if self.view is None or self.sub is None:
            return
        changes: list[Json] = []
        wanted: dict[tuple[str, int], int] = {}
        for mid, s in self.sub_streams.items():
            if s.get("type") != "video" or s.get("active") is False or s.get("feed_id") is None:
                continue
            size = self.view.get((str(s.get("feed_display")), str(s.get("feed_description") or "camera")))
            if size is None:
                continue
            key = (mid, int(s["feed_id"]))
            wanted[key] = layer = simulcast_layer(size[1], self.layer_cap)
            if self.layers.get(key) != layer:
                changes.append({"mid": mid, "substream": layer, "temporal": 2})
        if changes:
            await self.sub.message({"request": "configure", "streams": changes})
        raised = {key[1] for key, layer in wanted.items() if key in self.layers and layer > self.layers[key]}
        self.layers = wanted
        if raised:
            self._handle_tasks = [t for t in self._handle_tasks if not t.done()]
            self._handle_tasks.append(asyncio.create_task(self._ask_keyframes(raised), name=f"sfu-kf-{self.id}"))

    async def _ask_keyframes(self, feeds: set[int]) -> None:
        """Ask the publishers of ``feeds`` for keyframes at :data:`KEYFRAME_ASKS`, so that a higher layer
        asked of Janus starts without waiting for the publisher's next unprompted keyframe."""
        waited = 0.0
        for at in KEYFRAME_ASKS:
            await asyncio.sleep(at - waited)
            waited = at
            for feed_id in feeds:
                try:
                    await self.room.request_keyframe(feed_id)
                except (JanusError, JanusUnavailable, JanusSessionLost, TimeoutError, OSError) as exc:
                    log.debug("sfu peer %s: keyframe request for feed %s failed: %s", self.id, feed_id, exc)

    def _slowlink(self) -> None:
        """Janus saw losses towards this subscriber: one layer lower for every tile, for SLOWLINK_HOLD s."""
        self.layer_cap = max(0, self.layer_cap - 1)
        if self._cap_timer is not None:
            self._cap_timer.cancel()

        def restore() -> None:
            self._cap_timer = None
            self.layer_cap = 2
            self._sub_wake.set()

        self._cap_timer = asyncio.get_running_loop().call_later(SLOWLINK_HOLD, restore)
        self._sub_wake.set()

    def wake(self) -> None:
        """The room's feeds changed: bring the subscription in step."""
        self._sub_wake.set()

    def stats(self) -> Json:
        return {"publishing": self.publishing, "live": self.live, "subscribed": len(self.subscribed),
                "generation": self.generation, "view": None if self.view is None else len(self.view),
                "layers": sorted(self.layers.values()), "layerCap": self.layer_cap}
