"""aiortc publishers and subscribers of a Janus VideoRoom, for tests (real peer connections)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import av
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import VideoStreamTrack

from herewith.media.janus import JanusHandle, JanusSession

NO_ICE_SERVERS = RTCConfiguration(iceServers=[])  # None would mean Google's STUN server


class SmallVideo(VideoStreamTrack):
    """A moving gray-level test pattern, ``width`` x ``height`` at 30 fps."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.width, self.height, self.n = width, height, 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        self.n += 1
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        for i, plane in enumerate(frame.planes):
            plane.update(bytes([(self.n * 4 + i * 60) % 256]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        return frame


@dataclass
class Publisher:
    handle: JanusHandle
    pc: RTCPeerConnection
    feed_id: int


@dataclass
class Subscriber:
    handle: JanusHandle
    pc: RTCPeerConnection
    started: float
    frames: int = 0
    answered_at: float | None = None  # our SDP answer accepted by Janus (signaling done)
    connected_at: float | None = None  # ICE + DTLS done (aiortc connectionState "connected")
    first_frame_at: float | None = None
    first_frame: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def time_to_first_frame(self) -> float | None:
        """Seconds from the subscribe request to the first decoded video frame."""
        return None if self.first_frame_at is None else self.first_frame_at - self.started


async def publish(
    session: JanusSession,
    room: int,
    *,
    display: str = "pub",
    token: str | None = None,
    size: tuple[int, int] = (320, 240),
    track: MediaStreamTrack | None = None,
) -> Publisher:
    """Join ``room`` as a publisher and publish ``track`` (default: a small test pattern of ``size``).

    Returns once Janus reports webrtcup.
    """
    handle = await session.attach()
    join = {"request": "join", "ptype": "publisher", "room": room, "display": display}
    if token:
        join["token"] = token
    data, _ = await handle.message(join)
    pc = RTCPeerConnection(NO_ICE_SERVERS)
    pc.addTransceiver(track or SmallVideo(*size), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers all candidates here
    _, jsep = await handle.message({"request": "publish", "video": True}, {"type": "offer", "sdp": pc.localDescription.sdp})
    await handle.trickle(None)
    assert jsep is not None
    await pc.setRemoteDescription(RTCSessionDescription(jsep["sdp"], jsep["type"]))
    await handle.wait_for("webrtcup")  # subscribing before this fails with 428 "No such feed"
    return Publisher(handle, pc, int(data["id"]))


async def subscribe(session: JanusSession, room: int, feed_id: int) -> Subscriber:
    """Subscribe to one publisher's feed; frames are counted as they are decoded."""
    started = time.perf_counter()
    handle = await session.attach()
    _, jsep = await handle.message({"request": "join", "ptype": "subscriber", "room": room, "streams": [{"feed": feed_id}]})
    assert jsep is not None
    pc = RTCPeerConnection(NO_ICE_SERVERS)
    sub = Subscriber(handle, pc, started)

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState == "connected" and sub.connected_at is None:
            sub.connected_at = time.perf_counter()

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        async def pump() -> None:
            while True:
                try:
                    await track.recv()
                except Exception:
                    return
                sub.frames += 1
                if sub.first_frame_at is None:
                    sub.first_frame_at = time.perf_counter()
                    sub.first_frame.set()

        asyncio.ensure_future(pump())

    await pc.setRemoteDescription(RTCSessionDescription(jsep["sdp"], jsep["type"]))
    await pc.setLocalDescription(await pc.createAnswer())
    await handle.message({"request": "start"}, {"type": "answer", "sdp": pc.localDescription.sdp})
    sub.answered_at = time.perf_counter()
    await handle.trickle(None)
    return sub
