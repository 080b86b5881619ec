"""aiortc publishers and subscribers of a Janus VideoRoom, for tests (real peer connections)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import av
from aiortc import MediaStreamTrack, RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import VideoStreamTrack

from herewith.media.janus import JanusHandle, JanusSession

NO_ICE_SERVERS = RTCConfiguration(iceServers=[])  # None would mean Google's STUN server

# For the receiving side of a Janus (multistream) subscription. aiortc 1.16 with its default bundle policy
# ("balanced") creates each answering transceiver on the transport of the first earlier transceiver *of the same
# kind* and marks it bundled; when it then applies the offer's BUNDLE group it moves only the not-yet-bundled
# transceivers to the first m-line's transport. Janus's offer for a room with audio+video publishers starts with
# an audio m-line (mid 0), so the first video transceiver is moved to the audio transport while the later video
# transceivers stay registered on the video transport, which is then discarded. Their RTP (which arrives on the
# one bundled transport) has SSRCs that transport's router does not know, and aiortc's router does not route
# by MID header extension, only by SSRC, then by payload type when exactly one receiver has it: every such
# packet goes to the first video receiver (several streams mixed into one decoder) or is dropped. Chromium
# receivers are not affected, nor are offers whose first m-line is video (aiortc-only publishers), which is why
# only some Chromium senders' streams were missing. "max-bundle" puts every transceiver on one transport from
# the start, so every receiver is registered with its SDP SSRCs on the transport the media arrives on.
SUBSCRIBER_CONFIG = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


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
    pc = RTCPeerConnection(SUBSCRIBER_CONFIG)
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
