"""The signaling protocol over a real WebSocket against a real server (SQLite and PostgreSQL): every message
type and every bad-input path (herewith.signaling.protocol; rules from CONTRACT.md "Room roles", "Meetings")."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from herewith.auth.room_keys import issue_room_key
from herewith.config import Settings
from herewith.rooms.events import RoomEvent
from herewith.signaling import protocol as p
from tests.signaling.helpers import SDP_RECVONLY, SDP_SENDS, Client, create_meeting, room_key
from tests.support.servers import ThreadServer, create_org_key


@pytest.fixture
def make_server(settings: Settings) -> Iterator[Callable[..., ThreadServer]]:
    started: list[ThreadServer] = []

    def make(**updates: Any) -> ThreadServer:
        srv = ThreadServer(settings.model_copy(update=updates)).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def events(server: ThreadServer) -> list[RoomEvent]:
    """Room events the live rooms publish (a sink like insights and webhooks use)."""
    seen: list[RoomEvent] = []

    async def sink(event: RoomEvent) -> None:
        seen.append(event)

    server.services.room_events.subscribe(sink)
    return seen


async def test_join_presence_update_leave(server: ThreadServer, client: httpx.AsyncClient, events: list[RoomEvent]) -> None:
    m = await create_meeting(client)
    async with Client(server.ws_url, m["roomName"]) as ann, Client(server.ws_url, m["roomName"]) as bob:
        joined = await ann.join(displayName="Ann", roomKey=room_key(m["hostRoomUrl"]), externalId="user-1",
                                metadata='{"crm": 42}', deviceId="dev-a", userAgent="TestAgent/1.0")
        assert joined["role"] == "host" and joined["participants"] == [] and joined["iceServers"] == []
        assert joined["room"] == {"roomName": m["roomName"], "roomMode": "normal", "locked": False, "maxSenders": 4, "media": "mesh"}
        assert joined["resumeToken"] and joined["pingIntervalMs"] == 20000
        jb = await bob.join(displayName="Bob")
        assert jb["role"] == "visitor"
        assert [p["displayName"] for p in jb["participants"]] == ["Ann"]
        assert jb["participants"][0]["role"] == "host" and jb["participants"][0]["sends"] is True
        pj = await ann.expect("participant_joined")
        assert pj["participant"]["id"] == bob.id and pj["participant"]["displayName"] == "Bob"

        await bob.send({"type": "update", "audio": False, "video": True, "screen": True, "streams": {"camera": "c1", "screen": "s1"}})
        up = await ann.expect("participant_updated")
        assert up["participant"] | {} == up["participant"]
        assert (up["participant"]["audio"], up["participant"]["screen"], up["participant"]["streams"]) == (False, True, {"camera": "c1", "screen": "s1"})
        await bob.send({"type": "update", "displayName": "Robert"})
        assert (await ann.expect("participant_updated"))["participant"]["displayName"] == "Robert"

        await bob.send({"type": "ping"})
        await bob.expect("pong")
        await bob.send({"type": "leave"})
        assert await bob.closed() == 1000
        left = await ann.expect("participant_left")
        assert left == {"type": "participant_left", "participantId": bob.id, "reason": "left"}

    await asyncio.to_thread(server.run_coro, server.services.room_events.flush())
    kinds = [e.type for e in events]
    assert kinds[:3] == ["participant.joined", "participant.joined", "participant.left"]
    first = events[0]
    assert first.participant.role_name == "host" and first.participant.external_id == "user-1"
    assert first.participant.metadata == '{"crm": 42}' and first.participant.user_agent == "TestAgent/1.0"
    assert first.participant.device_id == "dev-a" and first.meeting_id == m["meetingId"] and first.room_name == m["roomName"]
    assert [p.participant_id for p in events[1].participants] == [ann.id, bob.id]
    # the host's socket closing is a "disconnected" departure
    await asyncio.sleep(0.2)
    assert kinds.count("participant.left") >= 1


async def test_disconnect_is_announced(server: ThreadServer, client: httpx.AsyncClient) -> None:
    m = await create_meeting(client)
    async with Client(server.ws_url, m["roomName"]) as ann:
        await ann.join(displayName="Ann")
        async with Client(server.ws_url, m["roomName"]) as bob:
            await bob.join()
        left = await ann.expect("participant_left")
        assert left["reason"] == "disconnected" and left["participantId"] == bob.id


async def test_offer_answer_candidate_reach_only_the_addressee(server: ThreadServer, client: httpx.AsyncClient) -> None:
    m = await create_meeting(client)
    async with Client(server.ws_url, m["roomName"]) as a, Client(server.ws_url, m["roomName"]) as b, \
            Client(server.ws_url, m["roomName"]) as c:
        for x in (a, b, c):
            await x.join()
        for x in (a, b, c):
            await x.drain(0.2)
        await a.send({"type": "offer", "to": b.id, "sdp": SDP_SENDS})
        offer = await b.expect("offer")
        assert offer == {"type": "offer", "from": a.id, "sdp": SDP_SENDS}
        await b.send({"type": "answer", "to": a.id, "sdp": SDP_SENDS})
        assert (await a.expect("answer")) == {"type": "answer", "from": b.id, "sdp": SDP_SENDS}
        cand = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0",
                "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "abcd"}
        await a.send({"type": "candidate", "to": b.id, **cand})
        assert (await b.expect("candidate")) == {"type": "candidate", "from": a.id, **cand}
        await a.send({"type": "candidate", "to": b.id, "candidate": None})  # end of candidates
        assert (await b.expect("candidate")) == {"type": "candidate", "from": a.id}
        await c.nothing(0.3)  # the third participant saw none of it
        # unknown or own addressee
        for to in ("nobody", a.id):
            await a.send({"type": "offer", "to": to, "sdp": SDP_SENDS})
            err = await a.expect_error("unknown_participant")
            assert err["ref"] == "offer"


async def test_chat_reaches_everyone_and_later_joiners_get_history(server: ThreadServer, client: httpx.AsyncClient) -> None:
    m = await create_meeting(client)
    async with Client(server.ws_url, m["roomName"]) as a, Client(server.ws_url, m["roomName"]) as b:
        await a.join(displayName="Ann")
        await b.join(displayName="Bob")
        await a.send({"type": "chat", "text": "hello <b>all</b>"})
        for x in (a, b):
            msg = await x.expect("chat")
            assert msg["from"] == a.id and msg["displayName"] == "Ann" and msg["text"] == "hello <b>all</b>"
            assert msg["at"].endswith("Z")
        for bad in ({"text": ""}, {"text": "   "}, {"text": "x" * 2001}, {}):
            await a.send({"type": "chat", **bad})
            assert (await a.expect_error("malformed"))["message"].startswith("text")
        async with Client(server.ws_url, m["roomName"]) as c:
            joined = await c.join()
            assert [x["text"] for x in joined["chat"]] == ["hello <b>all</b>"]


async def test_roles_from_room_keys(server: ThreadServer, client: httpx.AsyncClient) -> None:
    m = await create_meeting(client)
    other = await create_meeting(client)
    secret = server.settings.signing_key
    expired = issue_room_key(secret, m["roomName"], "host", server.clock.now() - timedelta(hours=2))
    cases = [
        (room_key(m["hostRoomUrl"]), "host"),
        (room_key(m["viewerRoomUrl"]), "viewer"),
        (room_key(other["hostRoomUrl"]), "visitor"),  # another room's key gives nothing here
        ("not-a-token", "visitor"),
        (expired, "visitor"),  # a roomKey past its expiry gives no host rights
        (None, "visitor"),
    ]
    for key, role in cases:
        async with Client(server.ws_url, m["roomName"]) as c:
            joined = await c.join(roomKey=key)
            assert joined["role"] == role, key
    async with Client(server.ws_url, m["roomName"]) as host, Client(server.ws_url, m["roomName"]) as viewer:
        await host.join(roomKey=room_key(m["hostRoomUrl"]))
        await viewer.join(roomKey=room_key(m["viewerRoomUrl"]), audio=True, video=True)
        p = (await host.expect("participant_joined"))["participant"]
        assert p["role"] == "viewer" and p["sends"] is False and p["audio"] is False and p["video"] is False


async def test_viewer_offer_that_sends_media_is_refused(server: ThreadServer, client: httpx.AsyncClient) -> None:
    m = await create_meeting(client)
    async with Client(server.ws_url, m["roomName"]) as host, Client(server.ws_url, m["roomName"]) as viewer, \
            Client(server.ws_url, m["roomName"]) as viewer2:
        await host.join(roomKey=room_key(m["hostRoomUrl"]))
        await viewer.join(roomKey=room_key(m["viewerRoomUrl"]))
        await viewer2.join(roomKey=room_key(m["viewerRoomUrl"]))
        for kind in ("offer", "answer"):
            await viewer.send({"type": kind, "to": host.id, "sdp": SDP_SENDS})
            err = await viewer.expect_error("viewer_cannot_send")
            assert err["ref"] == kind
        sendonly = SDP_SENDS.replace("a=sendrecv", "a=sendonly")
        await viewer.send({"type": "offer", "to": host.id, "sdp": sendonly})
        await viewer.expect_error("viewer_cannot_send")
        assert [x["type"] for x in await host.drain(0.2)] == ["participant_joined", "participant_joined"]
        # a receive-only answer is relayed
        await viewer.send({"type": "answer", "to": host.id, "sdp": SDP_RECVONLY})
        assert (await host.expect("answer"))["sdp"] == SDP_RECVONLY
        # viewers do not connect to each other; their update cannot claim media
        await viewer.send({"type": "offer", "to": viewer2.id, "sdp": SDP_RECVONLY})
        await viewer.expect_error("forbidden")
        await viewer.send({"type": "update", "audio": True, "video": True})
        up = await host.expect("participant_updated")
        assert up["participant"]["audio"] is False and up["participant"]["video"] is False


async def test_viewer_sdp_is_judged_by_every_m_line_direction(server: ThreadServer, client: httpx.AsyncClient) -> None:
    """The viewer rule reads each m-line's direction: sendrecv/sendonly is refused without a=msid/a=ssrc and
    with any line endings (herewith.kit.sdp); a receive-only offer goes through."""
    m = await create_meeting(client)
    no_track = SDP_SENDS.replace("a=msid:stream1 track1\r\n", "").replace("a=ssrc:1 cname:x\r\n", "")
    assert "a=sendrecv" in no_track and "msid" not in no_track and "ssrc" not in no_track
    cr_only = SDP_SENDS.replace("\r\n", "\r")
    no_direction = no_track.replace("a=sendrecv\r\n", "")
    mixed = SDP_RECVONLY.replace("a=recvonly\r\n", "a=x\ra=recvonly\r\n")  # one line to a browser: no direction
    async with Client(server.ws_url, m["roomName"]) as host, Client(server.ws_url, m["roomName"]) as viewer:
        await host.join(roomKey=room_key(m["hostRoomUrl"]))
        await viewer.join(roomKey=room_key(m["viewerRoomUrl"]))
        await host.expect("participant_joined")
        for sdp in (no_track, cr_only, no_direction, mixed):
            await viewer.send({"type": "offer", "to": host.id, "sdp": sdp})
            assert (await viewer.expect_error("viewer_cannot_send"))["ref"] == "offer"
        await host.nothing(0.2)  # none of them was relayed
        for sdp in (SDP_RECVONLY, SDP_RECVONLY.replace("\r\n", "\r"), SDP_RECVONLY.replace("\r\n", "\n")):
            await viewer.send({"type": "offer", "to": host.id, "sdp": sdp})
            assert (await host.expect("offer")) == {"type": "offer", "from": viewer.id, "sdp": sdp}
        # a sender's SDP is never judged: the same texts from the host are relayed
        await host.send({"type": "offer", "to": viewer.id, "sdp": cr_only})
        assert (await viewer.expect("offer"))["sdp"] == cr_only


async def test_host_controls_and_their_refusal_to_others(server: ThreadServer, client: httpx.AsyncClient) -> None:
    m = await create_meeting(client)
    url = m["roomName"]
    async with Client(server.ws_url, url) as host, Client(server.ws_url, url) as v1, Client(server.ws_url, url) as v2:
        await host.join(displayName="Host", roomKey=room_key(m["hostRoomUrl"]))
        await v1.join(displayName="V1")
        await v2.join(displayName="V2")
        for msg in ({"type": "lock", "locked": True}, {"type": "remove", "participantId": v2.id},
                    {"type": "mute_request", "participantId": v2.id, "kind": "audio"}, {"type": "end_meeting"},
                    {"type": "handle_knock", "participantId": v2.id, "accept": True}):
            await v1.send(msg)
            err = await v1.expect_error("forbidden")
            assert err["ref"] == msg["type"]
        # lock / unlock
        await host.send({"type": "lock", "locked": True})
        for x in (host, v1, v2):
            assert (await x.expect("room_updated")) == {"type": "room_updated", "locked": True}
        await host.send({"type": "lock", "locked": False})
        assert (await v1.expect("room_updated"))["locked"] is False
        # mute request
        await host.send({"type": "mute_request", "participantId": v1.id, "kind": "video"})
        assert (await v1.expect("mute_request")) == {"type": "mute_request", "from": host.id, "kind": "video"}
        await host.send({"type": "mute_request", "participantId": "ghost"})
        await host.expect_error("unknown_participant")
        # remove
        await host.send({"type": "remove", "participantId": v2.id})
        await v2.expect("removed")
        assert await v2.closed() == 4003
        for x in (host, v1):
            left = await x.expect("participant_left")
            assert left["participantId"] == v2.id and left["reason"] == "removed"
        # end the meeting for all
        await host.send({"type": "end_meeting"})
        for x in (host, v1):
            assert (await x.expect("ended")) == {"type": "ended", "reason": "ended"}
            assert await x.closed() == 4001
    # the room itself stays usable after a host ended the call
    async with Client(server.ws_url, url) as again:
        assert (await again.join())["participants"] == []


async def test_locked_room_knock_accept_reject_cancel(server: ThreadServer, client: httpx.AsyncClient, events: list[RoomEvent]) -> None:
    m = await create_meeting(client, isLocked=True)
    url = m["roomName"]
    async with Client(server.ws_url, url) as early, Client(server.ws_url, url) as host:
        # a visitor arriving before any host waits in the lobby; its knock is shown to a host who arrives later
        await early.join(expect="room_locked", displayName="Early")
        await early.send({"type": "chat", "text": "let me in"})
        await early.expect_error("not_joined")
        await early.send({"type": "knock"})
        await early.expect("knock_pending")
        joined = await host.join(roomKey=room_key(m["hostRoomUrl"]))
        assert joined["room"]["locked"] is True
        knocked = await host.expect("knocked")
        assert knocked["participant"]["displayName"] == "Early" and knocked["participant"]["role"] == "visitor"
        await host.send({"type": "handle_knock", "participantId": knocked["participant"]["id"], "accept": True})
        granted = await early.expect("joined")
        assert granted["role"] == "granted_visitor" and [p["role"] for p in granted["participants"]] == ["host"]
        assert (await host.expect("knock_handled")) == {"type": "knock_handled", "participantId": granted["participantId"], "accepted": True}
        assert (await host.expect("participant_joined"))["participant"]["role"] == "granted_visitor"
        resume = granted["resumeToken"]

        async with Client(server.ws_url, url) as rejected:
            await rejected.join(expect="room_locked", displayName="Nope")
            await rejected.send({"type": "knock"})
            k = await host.expect("knocked")
            await host.send({"type": "handle_knock", "participantId": k["participant"]["id"], "accept": False})
            assert (await rejected.expect("knock_handled"))["accepted"] is False
            await rejected.expect_error("knock_rejected")
            assert await rejected.closed() == 4003
            assert (await host.expect("knock_handled"))["accepted"] is False

        async with Client(server.ws_url, url) as quitter:
            await quitter.join(expect="room_locked")
            await quitter.send({"type": "knock"})
            k = await host.expect("knocked")
        assert (await host.expect("knock_cancelled")) == {"type": "knock_cancelled", "participantId": k["participant"]["id"]}
        await host.send({"type": "handle_knock", "participantId": k["participant"]["id"], "accept": True})
        await host.expect_error("unknown_participant")

    # an admitted visitor who reconnects with its resume token skips the knock (the room kept its state)
    async with Client(server.ws_url, url) as host, Client(server.ws_url, url) as back:
        await host.join(roomKey=room_key(m["hostRoomUrl"]))
        assert (await back.join(resumeToken=resume))["role"] == "granted_visitor"
        # unlocking lets everyone waiting in
        async with Client(server.ws_url, url) as waiting:
            await waiting.join(expect="room_locked")
            await waiting.send({"type": "knock"})
            await host.expect("knocked")
            await host.send({"type": "lock", "locked": False})
            assert (await waiting.expect("joined"))["role"] == "granted_visitor"
    await asyncio.to_thread(server.run_coro, server.services.room_events.flush())
    kinds = [e.type for e in events]
    assert kinds.count("participant.knocked") == 4 and kinds.count("participant.knock_cancelled") == 1
    assert all(e.participant.role_name for e in events)


async def test_fifth_sender_is_refused_viewers_are_not(server: ThreadServer, client: httpx.AsyncClient) -> None:
    m = await create_meeting(client)
    url = m["roomName"]
    clients = [Client(server.ws_url, url) for _ in range(6)]
    for c in clients:
        await c.__aenter__()
    try:
        for c in clients[:4]:
            await c.join()
        err = await clients[4].join(expect="error")
        assert err["code"] == "room_full" and "full" in err["message"]
        assert await clients[4].closed() == 4409
        viewer = await clients[5].join(roomKey=room_key(m["viewerRoomUrl"]))
        assert viewer["role"] == "viewer" and len(viewer["participants"]) == 4
        # when a sender leaves, there is room again
        await clients[0].send({"type": "leave"})
        await clients[0].closed()
        async with Client(server.ws_url, url) as late:
            await late.join()
    finally:
        for c in clients:
            await c.__aexit__(None, None, None)


async def test_unknown_deleted_and_expired_rooms(server: ThreadServer, client: httpx.AsyncClient) -> None:
    async with Client(server.ws_url, "no-such-room") as c:
        assert (await c.join(expect="error"))["code"] == "room_not_found"
        assert await c.closed() == 4404
    m = await create_meeting(client)
    async with Client(server.ws_url, m["roomName"]) as a, Client(server.ws_url, m["roomName"]) as b, \
            Client(server.ws_url, m["roomName"]) as knocker:
        await a.join()
        await b.join()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        r = await client.delete(f"/meetings/{m['meetingId']}")
        assert r.status_code == 204
        for x in (a, b):
            assert (await x.expect("ended", timeout=1.0)) == {"type": "ended", "reason": "deleted"}
            assert await x.closed(1.0) == 4001
        assert loop.time() - t0 < 1.0  # everyone is out within a second of DELETE
        assert (await knocker.join(expect="error"))["code"] == "room_gone"
    # deactivated: one hour after endDate joins stop
    m2 = await create_meeting(client, endDate=(server.clock.now() + timedelta(minutes=5)).isoformat())
    server.clock.advance(2 * 3600)
    try:
        async with Client(server.ws_url, m2["roomName"]) as c:
            assert (await c.join(expect="error"))["code"] == "room_gone"
            assert await c.closed() == 4410
    finally:
        server.clock.advance(-2 * 3600)
    # the same rule holds for a room with people in it (the live room's reference, not the database, is
    # read then), before the sweeper has ended it
    m3 = await create_meeting(client, endDate=(server.clock.now() + timedelta(minutes=5)).isoformat())
    async with Client(server.ws_url, m3["roomName"]) as a:
        await a.join()
        async with Client(server.ws_url, m3["roomName"]) as b:
            await b.join()  # live: the cached reference is reused
        server.clock.advance(2 * 3600)
        try:
            async with Client(server.ws_url, m3["roomName"]) as late:
                assert (await late.join(expect="error"))["code"] == "room_gone"
                assert await late.closed() == 4410
        finally:
            server.clock.advance(-2 * 3600)


BAD_FRAMES: list[tuple[Any, str]] = [
    ("not json", "malformed"),
    ("[1, 2]", "malformed"),
    ('"join"', "malformed"),
    ("{}", "malformed"),
    ('{"type": "explode"}', "malformed"),
    ('{"type": 7}', "malformed"),
    ({"type": "offer", "to": "x"}, "malformed"),  # no sdp
    ({"type": "offer", "to": "bad id!", "sdp": "v=0"}, "malformed"),
    ({"type": "candidate", "to": "x", "sdpMLineIndex": -1}, "malformed"),
    ({"type": "lock", "locked": "maybe"}, "malformed"),
    ({"type": "stats", "packetLossSend": 500, "packetLossRecv": 0, "bitrateSend": 1, "bitrateRecv": 1, "sampleRateMs": 5000}, "malformed"),
    ({"type": "update", "displayName": "x<script>"}, "malformed"),
    ({"type": "join"}, "already_joined"),
    ({"type": "knock"}, "already_joined"),
    (b"\x00\x01binary", "malformed"),
    ("{" * 10_000, "malformed"),
    ("[" * 5000 + "]" * 5000, "malformed"),
]


async def test_bad_frames_get_errors_and_the_server_survives(server: ThreadServer, client: httpx.AsyncClient) -> None:
    m = await create_meeting(client)
    async with Client(server.ws_url, m["roomName"]) as c:
        # before join: only join is accepted
        await c.send({"type": "chat", "text": "hi"})
        assert (await c.expect_error("not_joined"))["ref"] == "chat"
        await c.send({"type": "ping"})
        await c.expect("pong")
        await c.join()
        for frame, code in BAD_FRAMES:
            await c.send(frame)
            err = await c.expect_error(code)
            assert err["message"], frame
        await c.send("x" * (40 * 1024))  # over the 32 KiB cap, under the transport's 64 KiB
        assert "32768" in (await c.expect_error("too_large"))["message"]
        # still fine
        await c.send({"type": "chat", "text": "still here"})
        await c.expect("chat")
    assert (await client.get("/meetings")).status_code == 200


def answer_sdp(publishers: int) -> str:
    """An SDP answer shaped like Chromium's to a Janus subscription: an audio and a video m-line per publisher
    (1.2 KB a publisher here; Chromium's measured 2 KB: 98 KB for 50)."""
    head = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE " + " ".join(map(str, range(2 * publishers)))
    common = ("c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijklmn\r\n"
              "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\na=setup:active\r\na=recvonly\r\na=rtcp-mux\r\n")
    parts = [head]
    for i in range(publishers):
        parts.append(f"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n{common}a=mid:{2 * i}\r\na=rtpmap:111 opus/48000/2\r\n"
                     "a=fmtp:111 minptime=10;useinbandfec=1\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n")
        parts.append(f"m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n{common}a=mid:{2 * i + 1}\r\na=rtpmap:96 VP8/90000\r\n"
                     "a=rtcp-fb:96 goog-remb\r\na=rtcp-fb:96 transport-cc\r\na=rtcp-fb:96 ccm fir\r\n"
                     "a=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
                     "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n" + "a=extmap:3 http://www.ietf.org/id/"
                     "draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n" * 3)
    return "".join(parts)


async def test_a_group_room_answer_passes_the_frame_cap_and_other_big_frames_do_not(
    server: ThreadServer, client: httpx.AsyncClient
) -> None:
    """A page receiving every stream of a 50-publisher room answers ~100 KB of SDP: over the 32 KiB cap of other
    frames, admitted for ``sfu_answer`` (Settings.signaling_max_answer_bytes) once the participant joined."""
    sdp = answer_sdp(50) + "a=x\r\n" * 2000  # ~70 KB, less than Chromium's 98 KB
    assert 48 * 1024 < len(sdp) < 100 * 1024  # over the general cap and the former 64 KiB transport cap
    m = await create_meeting(client)
    async with Client(server.ws_url, m["roomName"]) as c:
        await c.send({"type": "sfu_answer", "sdp": sdp})
        await c.expect_error("too_large")  # not before join
        await c.join()
        await c.send({"type": "sfu_answer", "sdp": sdp})
        err = await c.expect_error("malformed")  # parsed and routed: this room is peer-to-peer
        assert err["ref"] == "sfu_answer" and "SFU" in err["message"]
        for big in ({"type": "sfu_publish", "sdp": sdp}, {"type": "chat", "text": "x" * 100_000}, "y" * 100_000):
            await c.send(big)
            assert "32768" in (await c.expect_error("too_large"))["message"]
        await c.send({"type": "chat", "text": "still here"})
        await c.expect("chat")
    room_max = answer_sdp(330)  # as large as Chromium's answer for 200 publishers (394 KB), the room maximum
    assert len(room_max) > 394_000
    parsed = p.parse_client_message(json.dumps({"type": "sfu_answer", "sdp": room_max}))
    assert isinstance(parsed, p.SfuAnswer) and parsed.sdp == room_max
    assert p.SfuOffer(sdp=room_max, subscription=1, streams=[]).sdp == room_max  # Janus's offer grows alike


@pytest.mark.parametrize("field,value,problem", [
    ("displayName", "a" * 101, "at most 100"),
    ("displayName", "Ann; DROP", "$!<>:;"),
    ("displayName", "$money", "$!<>:;"),
    ("externalId", "x" * 37, "36"),
    ("externalId", "has space", "36"),
    ("externalId", "ümlaut", "36"),
    ("metadata", "m" * 1001, "1000"),
    ("roomKey", "k" * 2001, "roomKey"),
])
async def test_join_fields_are_validated(server: ThreadServer, client: httpx.AsyncClient, field: str, value: str, problem: str) -> None:
    m = await create_meeting(client)
    async with Client(server.ws_url, m["roomName"]) as c:
        await c.send({"type": "join", field: value})
        err = await c.expect_error("malformed")
        assert err["message"].startswith(field) and (problem in err["message"] or problem == field)
        ok = await c.join(displayName="A" * 100, externalId="a-Z_9" * 7 + "x", metadata="m" * 1000)
        assert ok["role"] == "visitor"


async def test_rate_cap_and_repeated_abuse_close_the_socket(make_server: Callable[..., ThreadServer]) -> None:
    srv = make_server(signaling_rate_per_second=5.0, signaling_rate_burst=10, signaling_max_strikes=5)
    org = await create_org_key(srv.settings)
    async with httpx.AsyncClient(base_url=srv.base_url + "/v1", headers=org.headers) as http:
        m = await create_meeting(http)
    async with Client(srv.ws_url, m["roomName"]) as c, Client(srv.ws_url, m["roomName"]) as other:
        await c.join()
        await other.join()
        # over the burst: dropped, with one rate_limited error
        for _ in range(11):
            await c.send({"type": "ping"})
        err = await c.expect_error("rate_limited")
        assert "slow down" in err["message"]
        got = await c.drain(0.3)
        assert sum(1 for x in c.inbox + got if x["type"] == "pong") <= 10
        await asyncio.sleep(1.1)  # the budget refills: the connection works again
        await c.send({"type": "ping"})
        await c.expect("pong")
        # a flood is abuse: the socket is closed with 1008 (policy violation)
        for _ in range(40):
            try:
                await c.send({"type": "ping"})
            except Exception:  # noqa: BLE001 - closed meanwhile
                break
        assert await c.closed() == 1008
        # so are repeated malformed frames
        async with Client(srv.ws_url, m["roomName"]) as bad:
            await bad.join()
            for _ in range(5):
                await bad.send("nope")
            for _ in range(4):
                await bad.expect_error("malformed")
            assert await bad.closed() == 1008
        # the room and the server are fine
        await other.send({"type": "ping"})
        await other.expect("pong")


async def test_keepalive_pings_and_silent_sockets_are_closed(make_server: Callable[..., ThreadServer]) -> None:
    srv = make_server(signaling_ping_interval_seconds=0.3)
    org = await create_org_key(srv.settings)
    async with httpx.AsyncClient(base_url=srv.base_url + "/v1", headers=org.headers) as http:
        m = await create_meeting(http)
    async with Client(srv.ws_url, m["roomName"]) as silent, Client(srv.ws_url, m["roomName"]) as alive:
        assert (await silent.join())["pingIntervalMs"] == 300
        await alive.join()
        await asyncio.gather(silent.expect("ping", timeout=2), alive.expect("ping", timeout=2))
        await alive.send({"type": "pong"})

        # ``alive`` answers every ping (Client.expect pongs while it waits); ``silent`` never does
        code, left = await asyncio.gather(silent.closed(timeout=3), alive.expect("participant_left", timeout=3))
        assert code == 1001
        assert left["participantId"] == silent.id and left["reason"] == "disconnected"
        for _ in range(4):  # alive keeps answering: still connected after several intervals
            await alive.expect("ping", timeout=2)
            await alive.send({"type": "pong"})
        await alive.send({"type": "ping"})
        await alive.expect("pong")


async def test_ice_servers_from_settings_with_turn_rest_credentials(make_server: Callable[..., ThreadServer]) -> None:
    srv = make_server(stun_urls=["stun:127.0.0.1:3478"], turn_urls=["turn:127.0.0.1:3478?transport=udp"],
                      turn_secret="coturn-secret", turn_ttl_seconds=600)
    org = await create_org_key(srv.settings)
    async with httpx.AsyncClient(base_url=srv.base_url + "/v1", headers=org.headers) as http:
        m = await create_meeting(http)
    async with Client(srv.ws_url, m["roomName"]) as c:
        servers = (await c.join())["iceServers"]
    assert servers[0] == {"urls": ["stun:127.0.0.1:3478"]}
    turn = servers[1]
    assert turn["urls"] == ["turn:127.0.0.1:3478?transport=udp"]
    expiry, user = turn["username"].split(":", 1)
    assert user and abs(int(expiry) - (srv.clock.now().timestamp() + 600)) < 5
    expected = base64.b64encode(hmac.new(b"coturn-secret", turn["username"].encode(), hashlib.sha1).digest()).decode()
    assert turn["credential"] == expected


async def test_stats_samples_become_room_events(server: ThreadServer, client: httpx.AsyncClient, events: list[RoomEvent]) -> None:
    m = await create_meeting(client)
    async with Client(server.ws_url, m["roomName"]) as c:
        await c.join(displayName="Ann", userAgent="UA", deviceId="d1")
        sample = {"packetLossSend": 0.5, "packetLossRecv": 1.25, "bitrateSend": 800000, "bitrateRecv": 650000, "sampleRateMs": 5000}
        await c.send({"type": "stats", **sample})
        await c.send({"type": "ping"})
        await c.expect("pong")
    await asyncio.to_thread(server.run_coro, server.services.room_events.flush())
    stats = [e for e in events if e.type == "participant.stats"]
    assert len(stats) == 1 and stats[0].stats == sample
    assert stats[0].participant.display_name == "Ann" and stats[0].participant.user_agent == "UA"


async def test_random_frames_never_crash_the_server(server: ThreadServer, client: httpx.AsyncClient) -> None:
    m = await create_meeting(client)
    rng = random.Random(3)
    pieces: list[Any] = [None, True, 0, -1, 1e308, "", "x" * 300, [], {}, {"a": [1, {"b": None}]}, "\u0000", "\ud7ff"]
    types = ["join", "knock", "offer", "answer", "candidate", "update", "chat", "stats", "handle_knock", "lock",
             "remove", "mute_request", "end_meeting", "ping", "pong", "leave", "bogus"]
    fields = ["to", "sdp", "candidate", "sdpMid", "sdpMLineIndex", "text", "locked", "participantId", "accept",
              "kind", "displayName", "streams", "audio", "roomKey", "resumeToken"]
    async with Client(server.ws_url, m["roomName"]) as watcher:
        await watcher.join(roomKey=room_key(m["hostRoomUrl"]))
        for round_ in range(6):
            async with Client(server.ws_url, m["roomName"]) as fuzz:
                await fuzz.join()
                for _ in range(40):
                    t = rng.choice(types)
                    if t in ("leave", "end_meeting"):
                        continue
                    msg = {"type": t, **{rng.choice(fields): rng.choice(pieces) for _ in range(rng.randint(0, 4))}}
                    try:
                        await fuzz.send(json.dumps(msg) if rng.random() < 0.9 else json.dumps(msg)[: rng.randint(1, 20)])
                    except Exception:  # noqa: BLE001 - the server may close an abusive socket
                        break
        await watcher.send({"type": "ping"})
        await watcher.expect("pong")
    assert (await client.get("/meetings")).status_code == 200


async def test_sinks_with_handle_batch_get_events_in_order(server: ThreadServer, client: httpx.AsyncClient) -> None:
    batches: list[list[RoomEvent]] = []

    class BatchSink:
        async def __call__(self, event: RoomEvent) -> None:  # pragma: no cover - handle_batch is preferred
            batches.append([event])

        async def handle_batch(self, events: list[RoomEvent]) -> None:
            batches.append(list(events))

    server.services.room_events.subscribe(BatchSink())
    m = await create_meeting(client)
    sample = {"type": "stats", "packetLossSend": 0, "packetLossRecv": 0, "bitrateSend": 1, "bitrateRecv": 1, "sampleRateMs": 5000}
    async with Client(server.ws_url, m["roomName"]) as c:
        await c.join()
        for _ in range(20):
            await c.send(sample)
        await c.send({"type": "ping"})
        await c.expect("pong")
    await asyncio.to_thread(server.run_coro, server.services.room_events.flush())
    flat = [e.type for b in batches for e in b]
    assert flat == ["participant.joined"] + ["participant.stats"] * 20 + ["participant.left"]
