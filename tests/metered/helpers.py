"""Helpers of the second vendor's room API tests: an API client with ``secretKey``, rooms and tokens, and
real aiortc SDP offers (``RTCPeerConnection.createOffer`` with real tracks) for the media rules."""

from __future__ import annotations

import time
from typing import Any

import httpx
from aiortc import AudioStreamTrack, RTCConfiguration, RTCPeerConnection, VideoStreamTrack

from tests.support.servers import OrgKey, ThreadServer


def api(server: ThreadServer, org: OrgKey) -> httpx.AsyncClient:
    """A client of ``/api/v1`` whose every request carries ``?secretKey=<the org's API key>``."""
    return httpx.AsyncClient(base_url=server.base_url + "/api/v1", params={"secretKey": org.api_key}, timeout=30)


async def create_room(c: httpx.AsyncClient, **options: Any) -> dict[str, Any]:
    r = await c.post("/room", json=options)
    assert r.status_code == 200, r.text
    return r.json()


async def token(c: httpx.AsyncClient, **fields: Any) -> str:
    r = await c.post("/token", json=fields)
    assert r.status_code == 200, r.text
    return r.json()["token"]


def unix(seconds_from_now: float) -> int:
    return int(time.time() + seconds_from_now)


async def offer_sdp(audio: bool = True, video: int = 0, recv_video: bool = False) -> str:
    """An SDP offer made by aiortc: a microphone track when ``audio``, ``video`` camera-like video tracks,
    and a receive-only video m-line when ``recv_video`` (what a page that may not send video offers)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        if audio:
            pc.addTransceiver(AudioStreamTrack(), direction="sendrecv")
        else:
            pc.addTransceiver("audio", direction="recvonly")
        for _ in range(video):
            pc.addTransceiver(VideoStreamTrack(), direction="sendrecv")
        if recv_video:
            pc.addTransceiver("video", direction="recvonly")
        offer = await pc.createOffer()
        return offer.sdp
    finally:
        await pc.close()
