"""Every room option the server enforces, with participants speaking the signaling protocol over real
WebSockets and real aiortc SDP (peer-to-peer rooms; the Janus side is tests/metered/test_group_rooms.py).

One SQLite server for the module (``rules_server``): these rules live in the live room, not the database.
Rooms come from the second vendor's API (``/api/v1/room``) and tokens from ``/api/v1/token``.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from tests.metered.helpers import api, create_room, offer_sdp, token, unix
from tests.signaling.helpers import Client

pytestmark = pytest.mark.deadline(60)


@pytest.fixture
async def vendor(rules_server, rules_org):
    async with api(rules_server, rules_org) as c:
        yield c


def room(server, name: str) -> Client:
    return Client(server.ws_url, "/" + name)


async def test_private_room_without_a_token_is_refused_and_with_one_entered(rules_server, vendor) -> None:
    await create_room(vendor, roomName="r-private", privacy="private")
    member = await token(vendor, roomName="r-private", name="Bea")
    async with room(rules_server, "r-private") as nobody:
        await nobody.send({"type": "join", "displayName": "Nobody"})
        error = await nobody.expect_error("token_required")
        assert "private" in error["message"]
        assert await nobody.closed() == 4401
    async with room(rules_server, "r-private") as bea:
        joined = await bea.join(roomKey=member)
        assert joined["role"] == "member"
        async with room(rules_server, "r-private") as forged:
            await forged.send({"type": "join", "roomKey": member[:-4] + "AAAA"})
            await forged.expect_error("token_required")


async def test_request_to_join_a_knock_admitted_or_rejected_by_an_admin(rules_server, vendor) -> None:
    await create_room(vendor, roomName="r-knock", privacy="private", enableRequestToJoin=True)
    admin = await token(vendor, roomName="r-knock", isAdmin=True, name="Ann")
    async with room(rules_server, "r-knock") as ann, room(rules_server, "r-knock") as kim, \
            room(rules_server, "r-knock") as lou:
        assert (await ann.join(roomKey=admin))["role"] == "host"
        await kim.join(expect="room_locked", displayName="Kim")
        await kim.send({"type": "knock"})
        await kim.expect("knock_pending")
        knocked = await ann.expect("knocked")
        assert knocked["participant"]["displayName"] == "Kim"
        await ann.send({"type": "handle_knock", "participantId": knocked["participant"]["id"], "accept": True})
        joined = await kim.expect("joined")
        assert joined["role"] == "granted_visitor"
        await ann.expect("participant_joined")

        await lou.join(expect="room_locked", displayName="Lou")
        await lou.send({"type": "knock"})
        knocked = await ann.expect("knocked")
        await ann.send({"type": "handle_knock", "participantId": knocked["participant"]["id"], "accept": False})
        await lou.expect_error("knock_rejected")
        assert await lou.closed() == 4003
        # a visitor may not unlock its way in: only admins answer knocks
        await kim.send({"type": "handle_knock", "participantId": knocked["participant"]["id"], "accept": True})
        await kim.expect_error("forbidden")


async def test_max_participants_tells_the_next_one_the_room_is_full(rules_server, vendor) -> None:
    await create_room(vendor, roomName="r-max", maxParticipants=2)
    async with room(rules_server, "r-max") as a, room(rules_server, "r-max") as b:
        await a.join(displayName="A")
        await b.join(displayName="B")
        async with room(rules_server, "r-max") as c:
            await c.send({"type": "join", "displayName": "C"})
            full = await c.expect_error("room_full")
            assert "at most 2" in full["message"]
            assert await c.closed() == 4409
        await b.send({"type": "leave"})
        await a.expect("participant_left")
        async with room(rules_server, "r-max") as d:
            assert (await d.join(displayName="D"))["room"]["maxParticipants"] == 2


async def test_not_before_and_expiry_with_everyone_ejected_at_expiry(rules_server, vendor) -> None:
    opens, expires = unix(2) + 1, unix(2) + 4
    await create_room(vendor, roomName="r-window", notBeforeUnixSec=opens, expireUnixSec=expires, ejectAtRoomExp=True)
    async with httpx.AsyncClient(base_url=rules_server.base_url) as web:
        early = await web.get("/r-window")
        assert early.status_code == 403 and "has not started yet" in early.text
        async with room(rules_server, "r-window") as a:
            await a.send({"type": "join"})
            await a.expect_error("room_not_open")
            assert await a.closed() == 4425
        await asyncio.sleep(max(0.0, opens - time.time()) + 0.1)
        assert (await web.get("/r-window")).status_code == 200
        async with room(rules_server, "r-window") as a, room(rules_server, "r-window") as b:
            await a.join(displayName="A")
            await b.join(displayName="B")
            ended = await a.expect("ended", timeout=expires - time.time() + 5)
            assert ended["reason"] == "expired" and time.time() >= expires - 0.01
            assert (await b.expect("ended"))["reason"] == "expired"
            assert await a.closed() == 4001
        late = await web.get("/r-window")
        assert late.status_code == 410 and "expired" in late.text
        async with room(rules_server, "r-window") as c:
            await c.send({"type": "join"})
            await c.expect_error("room_gone")


async def test_eject_after_elapsed_time_of_the_room_and_of_a_token(rules_server, vendor) -> None:
    await create_room(vendor, roomName="r-eject", ejectAfterElapsedTimeInSec=3)
    short = await token(vendor, roomName="r-eject", ejectAfterElapsedTimeInSec=1)
    async with room(rules_server, "r-eject") as room_rule, room(rules_server, "r-eject") as token_rule:
        started = time.monotonic()
        joined = await room_rule.join(displayName="Room rule")
        assert joined["ejectAt"]
        await token_rule.join(roomKey=short, displayName="Token rule")
        removed = await token_rule.expect("removed", timeout=10)
        assert removed["reason"] == "time_limit" and 0.9 <= time.monotonic() - started < 3
        assert await token_rule.closed() == 4003
        left = await room_rule.expect("participant_left")
        assert left["reason"] == "removed"
        removed = await room_rule.expect("removed", timeout=10)
        assert removed["reason"] == "time_limit" and time.monotonic() - started >= 2.9


async def test_no_activity_ends_the_meeting_when_nobody_sends(rules_server, vendor) -> None:
    await create_room(vendor, roomName="r-idle", endMeetingAfterNoActivityInSec=2)
    async with room(rules_server, "r-idle") as talker, room(rules_server, "r-idle") as quiet:
        await talker.join(displayName="Talker", audio=True, video=False)
        await quiet.join(displayName="Quiet", audio=False, video=False)
        await quiet.nothing(3.0, ignore=("ping", "participant_joined", "participant_updated"))  # a microphone is on
        await talker.send({"type": "update", "audio": False})
        muted_at = time.monotonic()
        ended = await quiet.expect("ended", timeout=10)
        assert ended["reason"] == "inactive" and 1.9 <= time.monotonic() - muted_at < 6
        assert (await talker.expect("ended"))["reason"] == "inactive"
    async with room(rules_server, "r-idle") as again:  # the room stays: a new call may start
        await again.join(displayName="Again", audio=True)


async def answer_sdp(offer: str, send: bool) -> str:
    """aiortc's answer to ``offer``: receive-only (``send`` False) or sending audio back."""
    from aiortc import AudioStreamTrack

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        for t in pc.getTransceivers():
            if send and t.kind == "audio":
                t.sender.replaceTrack(AudioStreamTrack())
                t.direction = "sendrecv"
            else:
                t.direction = "recvonly"
        return (await pc.createAnswer()).sdp
    finally:
        await pc.close()


async def test_owner_only_broadcast_lets_only_admins_send(rules_server, vendor) -> None:
    await create_room(vendor, roomName="r-owner", ownerOnlyBroadcast=True)
    admin = await token(vendor, roomName="r-owner", isAdmin=True)
    member = await token(vendor, roomName="r-owner")
    async with room(rules_server, "r-owner") as ann, room(rules_server, "r-owner") as bob, \
            room(rules_server, "r-owner") as vic:
        assert "grants" not in await ann.join(roomKey=admin)
        assert (await bob.join(roomKey=member))["grants"] == {"audio": False, "video": False, "screen": False}
        assert (await vic.join(displayName="Visitor"))["grants"] == {"audio": False, "video": False, "screen": False}
        sends = await offer_sdp(audio=True, video=1)
        await bob.send({"type": "offer", "to": ann.id, "sdp": sends})
        assert "Only hosts" in (await bob.expect_error("media_not_allowed"))["message"]
        await vic.send({"type": "offer", "to": ann.id, "sdp": await offer_sdp(audio=True)})
        await vic.expect_error("media_not_allowed")
        await bob.send({"type": "update", "audio": True})
        await bob.expect_error("media_not_allowed")
        # the admin sends; the others answer receive-only (accepted) or sending (refused)
        await ann.send({"type": "offer", "to": bob.id, "sdp": sends})
        relayed = await bob.expect("offer")
        await bob.send({"type": "answer", "to": ann.id, "sdp": await answer_sdp(relayed["sdp"], send=True)})
        await bob.expect_error("media_not_allowed")
        await bob.send({"type": "answer", "to": ann.id, "sdp": await answer_sdp(relayed["sdp"], send=False)})
        assert (await ann.expect("answer"))["from"] == bob.id


async def test_audio_only_room_refuses_video(rules_server, vendor) -> None:
    await create_room(vendor, roomName="r-audio", audioOnlyRoom=True)
    async with room(rules_server, "r-audio") as a, room(rules_server, "r-audio") as b:
        joined = await a.join(displayName="A", video=True)
        assert joined["grants"] == {"audio": True, "video": False, "screen": False}
        await b.join(displayName="B")
        await a.send({"type": "offer", "to": b.id, "sdp": await offer_sdp(audio=True, video=1)})
        assert "video" in (await a.expect_error("media_not_allowed"))["message"]
        await a.send({"type": "update", "video": True})
        await a.expect_error("media_not_allowed")
        await a.send({"type": "offer", "to": b.id, "sdp": await offer_sdp(audio=True, recv_video=True)})
        assert (await b.expect("offer"))["from"] == a.id


async def test_chat_and_screen_sharing_switched_off(rules_server, vendor) -> None:
    await create_room(vendor, roomName="r-nochat", enableChat=False, enableScreenSharing=False)
    await create_room(vendor, roomName="r-chat", enableChat=True)
    async with room(rules_server, "r-nochat") as a, room(rules_server, "r-nochat") as b:
        joined = await a.join(displayName="A")
        assert joined["room"]["chat"] is False and joined["grants"] == {"audio": True, "video": True, "screen": False}
        await b.join(displayName="B")
        await a.send({"type": "chat", "text": "hello"})
        await a.expect_error("chat_disabled")
        await b.nothing(0.3, ignore=("ping", "participant_joined", "participant_updated"))
        await a.send({"type": "update", "screen": True})
        await a.expect_error("media_not_allowed")
        await a.send({"type": "offer", "to": b.id, "sdp": await offer_sdp(audio=True, video=2)})  # camera + screen
        assert "Screen sharing" in (await a.expect_error("media_not_allowed"))["message"]
        await a.send({"type": "offer", "to": b.id, "sdp": await offer_sdp(audio=True, video=1)})  # the camera alone
        assert (await b.expect("offer"))["from"] == a.id
    async with room(rules_server, "r-chat") as a, room(rules_server, "r-chat") as b:
        await a.join(displayName="A")
        await b.join(displayName="B")
        await a.send({"type": "chat", "text": "hello"})
        assert (await b.expect("chat"))["text"] == "hello"


async def test_token_disables_video_audio_and_screen(rules_server, vendor) -> None:
    await create_room(vendor, roomName="r-token-media")
    no_video = await token(vendor, roomName="r-token-media", disableVideo=True, disableScreenSharing=True)
    no_audio = await token(vendor, roomName="r-token-media", disableAudio=True)
    async with room(rules_server, "r-token-media") as v, room(rules_server, "r-token-media") as a, \
            room(rules_server, "r-token-media") as peer:
        assert (await v.join(roomKey=no_video))["grants"] == {"audio": True, "video": False, "screen": False}
        assert (await a.join(roomKey=no_audio))["grants"] == {"audio": False, "video": True, "screen": True}
        await peer.join(displayName="Peer")
        await v.send({"type": "offer", "to": peer.id, "sdp": await offer_sdp(audio=True, video=1)})
        await v.expect_error("media_not_allowed")
        await a.send({"type": "offer", "to": peer.id, "sdp": await offer_sdp(audio=True, video=1)})
        assert "audio" in (await a.expect_error("media_not_allowed"))["message"]
        await a.send({"type": "offer", "to": peer.id, "sdp": await offer_sdp(audio=False, video=1)})
        assert (await peer.expect("offer"))["from"] == a.id
        await v.send({"type": "offer", "to": peer.id, "sdp": await offer_sdp(audio=True, recv_video=True)})
        assert (await peer.expect("offer"))["from"] == v.id
