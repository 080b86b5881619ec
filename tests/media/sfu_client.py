"""A Python participant of a group room: Herewith's signaling over a real WebSocket, media over aiortc via Janus.

It speaks the same ``sfu_*`` messages as the room page's sfu.js: a publisher connection (it offers,
``sfu_publish`` -> ``sfu_published``) and a subscriber connection (the server offers, ``sfu_offer`` ->
``sfu_answer``). Decoded frames are counted per sending participant (from the offer's stream map).

Usage::

    c = SfuClient(server.ws_url, "/room", display="bot-1")
    await c.join()                 # joined; publishes a small test pattern if its role sends
    await c.wait_frames_from({"id1", "id2"}, 10)
    await c.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from typing import Any

import websockets
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from .peers import NO_ICE_SERVERS, SUBSCRIBER_CONFIG, SmallVideo


class SfuClient:
    def __init__(self, ws_url: str, room_name: str, *, display: str, room_key: str | None = None,
                 publish: bool = True, size: tuple[int, int] = (160, 120), grid: bool = False) -> None:
        self.url = f"{ws_url}/signal/{room_name.lstrip('/')}"
        self.display = display
        self.room_key = room_key
        self.want_publish = publish
        self.size = size
        self.grid = grid  # joins saying it will report its grid (sfu_view): nothing is forwarded until it does
        self.ws: Any = None
        self.id: str | None = None
        self.role: str | None = None
        self.joined: dict[str, Any] = {}
        self.messages: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.pub_pc: RTCPeerConnection | None = None
        self.sub_pc: RTCPeerConnection | None = None
        self.subscription = 0
        self.mid_owner: dict[str, str | None] = {}
        self.frames: dict[str, int] = defaultdict(int)  # participant id -> decoded video frames
        self.mid_frames: dict[str, int] = defaultdict(int)  # subscriber mid -> decoded video frames
        self.first_frame_at: dict[str, float] = {}  # participant id -> monotonic time, current subscriber connection
        self.restarts = 0
        self.closed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._pumps: list[asyncio.Task[None]] = []

    # -- signaling -------------------------------------------------------------------------------
    async def join(self, timeout: float = 20.0, *, knock: bool = False) -> dict[str, Any]:
        """Join (with ``knock``: knock when the room is locked and wait to be let in)."""
        self.ws = await websockets.connect(self.url, max_size=2**20)
        await self.send({"type": "join", "displayName": self.display, "roomKey": self.room_key,
                         "audio": False, "video": self.want_publish, "grid": self.grid})
        async with asyncio.timeout(timeout):
            while True:
                msg = json.loads(await self.ws.recv())
                self.messages.append(msg)
                if msg["type"] == "joined":
                    break
                if msg["type"] == "room_locked":
                    if not knock:
                        raise RuntimeError("room is locked")
                    await self.send({"type": "knock"})
                if msg["type"] == "error":
                    raise RuntimeError(f"join refused: {msg}")
        self.joined = msg
        self.id, self.role = msg["participantId"], msg["role"]
        self._reader = asyncio.create_task(self._read())
        if self.want_publish and self.role not in ("viewer", "granted_viewer"):
            await self.publish()
        return msg

    async def send(self, msg: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(msg))

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                msg = json.loads(text)
                msg["_at"] = time.monotonic()  # when it arrived (timelines in tests)
                self.messages.append(msg)
                kind = msg["type"]
                try:
                    if kind == "ping":
                        await self.send({"type": "pong"})
                    elif kind == "sfu_published":
                        async with self._lock:
                            if self.pub_pc is not None:
                                await self.pub_pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "answer"))
                    elif kind == "sfu_offer":
                        await self._on_offer(msg)
                    elif kind == "sfu_restart":
                        self.restarts += 1
                        await self._restart()
                    elif kind == "error":
                        self.errors.append(msg)
                except Exception as exc:  # noqa: BLE001 - keep reading; tests look at errors
                    self.errors.append({"type": "client_exception", "message": repr(exc), "ref": kind})
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    # -- publisher -------------------------------------------------------------------------------
    async def publish(self, track: MediaStreamTrack | None = None) -> None:
        """Offer a small test pattern (the server answers with ``sfu_published``)."""
        async with self._lock:
            if self.pub_pc is not None:
                await self.pub_pc.close()
            pc = self.pub_pc = RTCPeerConnection(NO_ICE_SERVERS)
            pc.addTransceiver(track or SmallVideo(*self.size), direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers every candidate here
            await self.send({"type": "sfu_publish", "sdp": pc.localDescription.sdp})

    async def _restart(self) -> None:
        async with self._lock:
            for pc in (self.pub_pc, self.sub_pc):
                if pc is not None:
                    await pc.close()
            self.pub_pc = self.sub_pc = None
            self.subscription = 0
            self.first_frame_at = {}
        if self.want_publish and self.role not in ("viewer", "granted_viewer"):
            await self.publish()

    # -- subscriber ------------------------------------------------------------------------------
    async def _on_offer(self, msg: dict[str, Any]) -> None:
        async with self._lock:
            if self.sub_pc is None or msg["subscription"] != self.subscription:
                if self.sub_pc is not None:
                    await self.sub_pc.close()
                self.sub_pc = self._new_sub_pc()
                self.subscription = msg["subscription"]
                self.first_frame_at = {}
            self.mid_owner = {s["mid"]: s.get("participantId") for s in msg["streams"] if s["kind"] == "video"}
            pc = self.sub_pc
            await pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await self.send({"type": "sfu_answer", "sdp": pc.localDescription.sdp})

    def _new_sub_pc(self) -> RTCPeerConnection:
        # max-bundle, not aiortc's default "balanced": see SUBSCRIBER_CONFIG in peers.py (with "balanced", aiortc
        # leaves some m-lines of a Janus multistream offer on a discarded transport and their RTP goes astray)
        pc = RTCPeerConnection(SUBSCRIBER_CONFIG)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind != "video":
                return
            def mid_of() -> str | None:
                return next((t.mid for t in pc.getTransceivers() if t.receiver.track is track), None)

            async def pump() -> None:
                mid = None
                while True:
                    try:
                        await track.recv()
                    except Exception:  # noqa: BLE001 - track ended
                        return
                    mid = mid or mid_of()
                    self.mid_frames[mid or "?"] += 1
                    owner = self.mid_owner.get(mid or "")
                    if owner:
                        self.frames[owner] += 1
                        self.first_frame_at.setdefault(owner, time.monotonic())

            self._pumps.append(asyncio.ensure_future(pump()))

        return pc

    # -- checks ----------------------------------------------------------------------------------
    async def wait_frames_from(self, participants: set[str], minimum: int = 5, timeout: float = 30.0) -> None:
        """Wait until at least ``minimum`` more frames arrived from each of ``participants``."""
        base = {pid: self.frames.get(pid, 0) for pid in participants}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.frames.get(pid, 0) - base[pid] >= minimum for pid in participants):
                return
            await asyncio.sleep(0.1)
        got = {pid: self.frames.get(pid, 0) - base[pid] for pid in participants}
        raise TimeoutError(f"{self.display}: frames from {got}, wanted {minimum} each; errors {self.errors}; "
                           f"mids {self.mid_owner} frames per mid {dict(self.mid_frames)}")

    async def video_packets(self) -> dict[str, int]:
        """RTP video packets received per sending participant on the current subscriber connection."""
        out: dict[str, int] = defaultdict(int)
        pc = self.sub_pc
        if pc is None:
            return out
        for t in pc.getTransceivers():
            owner = self.mid_owner.get(t.mid or "")
            if owner is None or t.receiver.track is None or t.receiver.track.kind != "video":
                continue
            for stat in (await t.receiver.getStats()).values():
                if stat.type == "inbound-rtp":
                    out[owner] += stat.packetsReceived
        return out

    async def wait_video_from(self, participants: set[str], decoded: set[str], timeout: float = 30.0,
                              packets: int = 50) -> None:
        """Wait until video RTP arrives from every one of ``participants`` (``packets`` more each) and at least
        3 more frames were decoded from each of ``decoded``."""
        packets0, frames0, pc0 = await self.video_packets(), dict(self.frames), self.sub_pc
        deadline = time.monotonic() + timeout
        while True:
            if self.sub_pc is not pc0:  # a new subscriber connection counts from zero
                packets0, pc0 = {}, self.sub_pc
            got = await self.video_packets()
            ok_rtp = all(got.get(pid, 0) - packets0.get(pid, 0) >= packets for pid in participants)
            ok_dec = all(self.frames.get(pid, 0) - frames0.get(pid, 0) >= 3 for pid in decoded)
            if ok_rtp and ok_dec:
                return
            if time.monotonic() > deadline:
                offers = [m["streams"] for m in self.messages if m["type"] == "sfu_offer"]
                raise TimeoutError(f"{self.display}: packets {dict(got)} (from {packets0}), frames {dict(self.frames)}"
                                   f"; offers {offers}; transceivers {[(t.mid, t.receiver.track and t.receiver.track.kind) for t in self.sub_pc.getTransceivers()] if self.sub_pc else None}")
            await asyncio.sleep(0.2)

    async def wait_message(self, kind: str, timeout: float = 20.0, start: int = 0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.messages[start:]:
                if m["type"] == kind:
                    return m
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{self.display}: no {kind} message")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.send({"type": "leave"})
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
        for t in self._pumps:
            t.cancel()
        for pc in (self.pub_pc, self.sub_pc):
            if pc is not None:
                with contextlib.suppress(Exception):
                    await pc.close()

