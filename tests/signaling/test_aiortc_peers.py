"""Two aiortc peers negotiate through the server's signaling and exchange audio and video frames; an aiortc
viewer receives and is refused when its SDP would send. Runs in the test network namespace (``-m netns``)."""

from __future__ import annotations

import asyncio
import json

import aioice.ice
import httpx
import pytest

from aiortc import (  # noqa: E402
    AudioStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)

from herewith.signaling.live_room import sdp_sends_media  # noqa: E402
from tests.signaling.helpers import Client, create_meeting, room_key  # noqa: E402
from tests.support.servers import ThreadServer  # noqa: E402

pytestmark = pytest.mark.netns


@pytest.fixture(autouse=True)
def loopback_ice():
    """aioice leaves 127.0.0.1 out of host candidates and uses every other address: pin loopback only for
    these tests (recipes/aiortc_loopback.py), and give back whatever pinning other tests set up."""
    original = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]
    yield
    aioice.ice.get_host_addresses = original

NO_ICE = RTCConfiguration(iceServers=[])  # None would mean Google's STUN server


class Counter:
    """Counts frames received per kind from a peer connection's remote tracks."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.frames = {"audio": 0, "video": 0}
        self.got = {"audio": asyncio.Event(), "video": asyncio.Event()}
        self.tasks: list[asyncio.Task] = []

        @pc.on("track")
        def on_track(track) -> None:  # noqa: ANN001
            async def pump() -> None:
                while True:
                    try:
                        await track.recv()
                    except Exception:  # noqa: BLE001 - track ended
                        return
                    self.frames[track.kind] += 1
                    if self.frames[track.kind] >= 5:
                        self.got[track.kind].set()

            self.tasks.append(asyncio.ensure_future(pump()))

    async def wait(self, kinds: tuple[str, ...] = ("audio", "video"), timeout: float = 20) -> None:
        await asyncio.wait_for(asyncio.gather(*(self.got[k].wait() for k in kinds)), timeout)

    def stop(self) -> None:
        for t in self.tasks:
            t.cancel()


async def test_two_aiortc_peers_exchange_frames_through_signaling(server: ThreadServer, client: httpx.AsyncClient) -> None:
    m = await create_meeting(client)
    pc_a, pc_b = RTCPeerConnection(NO_ICE), RTCPeerConnection(NO_ICE)
    count_a, count_b = Counter(pc_a), Counter(pc_b)
    try:
        async with Client(server.ws_url, m["roomName"]) as b, Client(server.ws_url, m["roomName"]) as a:
            await b.join(displayName="aiortc B")
            joined = await a.join(displayName="aiortc A")
            assert [p["id"] for p in joined["participants"]] == [b.id]
            # the newcomer offers to everyone already there (the page's rule)
            pc_a.addTrack(AudioStreamTrack())
            pc_a.addTrack(VideoStreamTrack())
            await pc_a.setLocalDescription(await pc_a.createOffer())  # aiortc gathers: candidates are in the SDP
            await a.send({"type": "offer", "to": b.id, "sdp": pc_a.localDescription.sdp})
            offer = await b.expect("offer", timeout=10)
            assert offer["from"] == a.id
            await pc_b.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
            pc_b.addTrack(AudioStreamTrack())
            pc_b.addTrack(VideoStreamTrack())
            await pc_b.setLocalDescription(await pc_b.createAnswer())
            await b.send({"type": "answer", "to": a.id, "sdp": pc_b.localDescription.sdp})
            answer = await a.expect("answer", timeout=10)
            await pc_a.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            await asyncio.gather(count_a.wait(), count_b.wait())
            assert all(n >= 5 for n in count_a.frames.values()) and all(n >= 5 for n in count_b.frames.values())
            assert "127.0.0.1" in pc_a.localDescription.sdp
    finally:
        count_a.stop()
        count_b.stop()
        await pc_a.close()
        await pc_b.close()


async def test_aiortc_viewer_receives_and_cannot_send(server: ThreadServer, client: httpx.AsyncClient) -> None:
    m = await create_meeting(client)
    host_pc, viewer_pc = RTCPeerConnection(NO_ICE), RTCPeerConnection(NO_ICE)
    cheat_pc = RTCPeerConnection(NO_ICE)
    count = Counter(viewer_pc)
    try:
        async with Client(server.ws_url, m["roomName"]) as host, Client(server.ws_url, m["roomName"]) as viewer:
            await host.join(roomKey=room_key(m["hostRoomUrl"]))
            await viewer.join(roomKey=room_key(m["viewerRoomUrl"]))
            assert (await host.expect("participant_joined"))["participant"]["sends"] is False
            # a viewer's offer that sends media (a real aiortc SDP with tracks) is refused and not relayed
            cheat_pc.addTrack(VideoStreamTrack())
            await cheat_pc.setLocalDescription(await cheat_pc.createOffer())
            assert sdp_sends_media(cheat_pc.localDescription.sdp)
            await viewer.send({"type": "offer", "to": host.id, "sdp": cheat_pc.localDescription.sdp})
            assert (await viewer.expect_error("viewer_cannot_send"))["ref"] == "offer"
            # the sender offers to the viewer; the viewer answers receive-only
            host_pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
            host_pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
            await host_pc.setLocalDescription(await host_pc.createOffer())
            await host.send({"type": "offer", "to": viewer.id, "sdp": host_pc.localDescription.sdp})
            offer = await viewer.expect("offer", timeout=10)
            await viewer_pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
            await viewer_pc.setLocalDescription(await viewer_pc.createAnswer())
            assert not sdp_sends_media(viewer_pc.localDescription.sdp)
            await viewer.send({"type": "answer", "to": host.id, "sdp": viewer_pc.localDescription.sdp})
            answer = await host.expect("answer", timeout=10)
            await host_pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            await count.wait()
            assert count.frames["video"] >= 5
            assert [json.loads(json.dumps(x))["type"] for x in await viewer.drain(0.2)] in ([], ["ping"])
    finally:
        count.stop()
        for pc in (host_pc, viewer_pc, cheat_pc):
            await pc.close()
