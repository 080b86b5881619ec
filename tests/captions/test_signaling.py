"""Live transcription over real WebSockets against a real server (SQLite and PostgreSQL): what ``joined``
says, who may start and stop it (hosts only, server-enforced), who may caption (the ``captioner`` role
only), how captions reach the room (with the speaker's display name, never back to the captioner, only when
``liveCaptions``), the triggers, and the session's final captions stored as a ``LIVE_TRANSCRIPTION``.

The captioner here is a plain WebSocket client holding a ``captioner`` room key (the real captioner process,
with aiortc and Whisper, is proven in tests/e2e/test_live_captions.py); ``live_captions_per_node=0`` keeps the
server from launching one, so a host's start is answered ``unavailable`` (turned off on this server).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from herewith.auth.room_keys import issue_room_key
from herewith.config import Settings
from tests.signaling.helpers import Client, create_meeting, room_key
from tests.support.servers import ThreadServer

pytestmark = pytest.mark.timeout(120)

MANUAL = {"destination": None, "startTrigger": "manual", "language": "en", "liveCaptions": True}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"live_captions_per_node": 0})


def captioner_key(server: ThreadServer, meeting: dict[str, Any]) -> str:
    from datetime import datetime

    end = datetime.fromisoformat(meeting["endDate"].replace("Z", "+00:00"))
    return issue_room_key(server.settings.signing_key, meeting["roomName"], "captioner", end)


async def live_transcriptions(client: httpx.AsyncClient, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        r = await client.get("/transcriptions")
        assert r.status_code == 200, r.text
        found = [t for t in r.json()["results"] if t["type"] == "LIVE_TRANSCRIPTION"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


async def test_hosts_start_captions_the_captioner_captions_and_the_session_is_stored(
        server: ThreadServer, client: httpx.AsyncClient) -> None:
    m = await create_meeting(client, liveTranscription=MANUAL)
    async with Client(server.ws_url, m["roomName"]) as host, Client(server.ws_url, m["roomName"]) as guest, \
            Client(server.ws_url, m["roomName"]) as captioner:
        joined = await host.join(displayName="Hannah", roomKey=room_key(m["hostRoomUrl"]))
        assert joined["captions"] == {"state": "off", "startTrigger": "manual", "liveCaptions": True, "language": "en"}
        await guest.join(displayName="Gustav")

        # Only hosts start or stop (server-enforced); a host is told when this server runs no captioner.
        for kind in ("captions_start", "captions_stop"):
            await guest.send({"type": kind})
            err = await guest.expect_error("forbidden")
            assert err["ref"] == kind
        await host.send({"type": "captions_start"})
        status = await host.expect("captions")
        assert status["state"] == "unavailable" and "turned off" in status["message"]
        await guest.nothing(0.3)

        # Only the captioner captions.
        await guest.send({"type": "caption", "participantId": host.id, "text": "I said this", "final": True,
                          "utteranceId": "x.1"})
        assert (await guest.expect_error("forbidden"))["ref"] == "caption"

        # The captioner: in the room for everyone, no tile's worth of rights, takes no sender's place.
        cj = await captioner.join(displayName="Live captions", roomKey=captioner_key(server, m), audio=False, video=False)
        assert cj["role"] == "captioner"
        seen = await guest.expect("participant_joined")
        assert seen["participant"]["role"] == "captioner" and seen["participant"]["sends"] is False
        await host.expect("participant_joined")

        await captioner.send({"type": "caption", "participantId": host.id, "text": "Good morning", "final": False,
                              "utteranceId": f"{host.id}.1"})
        await captioner.send({"type": "caption", "participantId": host.id, "text": "Good morning, everyone.",
                              "final": True, "utteranceId": f"{host.id}.1"})
        await captioner.send({"type": "caption", "participantId": guest.id, "text": "Hello Hannah.", "final": True,
                              "utteranceId": f"{guest.id}.1"})
        await captioner.send({"type": "caption", "participantId": "nobody-here", "text": "ghost", "final": True,
                              "utteranceId": "nobody-here.1"})
        partial = await guest.expect("caption", final=False)
        assert partial["participantId"] == host.id and partial["displayName"] == "Hannah"
        assert partial["text"] == "Good morning" and partial["utteranceId"] == f"{host.id}.1" and partial["at"]
        final = await guest.expect("caption", final=True)
        assert final["text"] == "Good morning, everyone." and final["displayName"] == "Hannah"
        mine = await guest.expect("caption", participantId=guest.id)  # one's own captions too
        assert mine["displayName"] == "Gustav"
        await host.expect("caption", participantId=guest.id)
        assert not [x for x in await guest.drain(0.3) if x.get("type") == "caption"]  # nothing of "nobody-here"
        assert not [x for x in await captioner.drain(0.2) if x.get("type") == "caption"]  # never back to it

        # A malformed caption is refused like any bad frame.
        await captioner.send({"type": "caption", "participantId": host.id, "text": "x" * 2001, "final": True,
                              "utteranceId": "u"})
        await captioner.expect_error("malformed")
        await guest.send({"type": "leave"})
        await host.send({"type": "leave"})
        await asyncio.sleep(0.2)

    # The session is over: its two final captions are one LIVE_TRANSCRIPTION of this room.
    found = await live_transcriptions(client, 1)
    assert len(found) == 1, found
    t = found[0]
    assert t["roomName"] == m["roomName"] and t["state"] == "ready"
    link = await client.get(f"/transcriptions/{t['transcriptionId']}/access-link")
    assert link.status_code == 200, link.text
    async with httpx.AsyncClient(timeout=10) as plain:
        text = (await plain.get(link.json()["accessLink"])).text
    assert "Hannah" in text and "Good morning, everyone." in text and "Gustav" in text and "Hello Hannah." in text
    assert "ghost" not in text and "Good morning\n" not in text  # finals only


async def test_captions_are_only_stored_when_the_meeting_does_not_show_them(server: ThreadServer,
                                                                            client: httpx.AsyncClient) -> None:
    m = await create_meeting(client, liveTranscription={**MANUAL, "liveCaptions": False})
    async with Client(server.ws_url, m["roomName"]) as host, Client(server.ws_url, m["roomName"]) as captioner:
        joined = await host.join(displayName="Hannah", roomKey=room_key(m["hostRoomUrl"]))
        assert joined["captions"]["liveCaptions"] is False
        await captioner.join(roomKey=captioner_key(server, m), audio=False, video=False)
        await captioner.send({"type": "caption", "participantId": host.id, "text": "Private words.", "final": True,
                              "utteranceId": f"{host.id}.1"})
        assert not [x for x in await host.drain(0.5) if x.get("type") == "caption"]
        await host.send({"type": "leave"})
        await asyncio.sleep(0.2)
    found = await live_transcriptions(client, 1)
    assert len(found) == 1


async def test_the_final_caption_of_someone_who_just_left_is_kept(server: ThreadServer,
                                                                   client: httpx.AsyncClient) -> None:
    """What a participant said just before leaving is decoded after they left: its final still reaches the room and
    the stored transcript under their name; a partial of theirs, or a caption of someone never here, does not."""
    m = await create_meeting(client, liveTranscription=MANUAL)
    async with Client(server.ws_url, m["roomName"]) as host, Client(server.ws_url, m["roomName"]) as guest, \
            Client(server.ws_url, m["roomName"]) as captioner:
        await host.join(displayName="Hannah", roomKey=room_key(m["hostRoomUrl"]))
        await guest.join(displayName="Gustav")
        guest_id = guest.id
        await captioner.join(roomKey=captioner_key(server, m), audio=False, video=False)
        await guest.send({"type": "leave"})
        await host.expect("participant_left", participantId=guest_id)
        for final, text in ((False, "See you"), (True, "See you all tomorrow.")):
            await captioner.send({"type": "caption", "participantId": guest_id, "text": text, "final": final,
                                  "utteranceId": f"{guest_id}.1"})
        await captioner.send({"type": "caption", "participantId": "nobody-here", "text": "ghost", "final": True,
                              "utteranceId": "nobody-here.1"})
        got = await host.expect("caption", participantId=guest_id)
        assert got["final"] is True and got["text"] == "See you all tomorrow." and got["displayName"] == "Gustav"
        assert not [x for x in await host.drain(0.3) if x.get("type") == "caption"]
        await host.send({"type": "leave"})
        await asyncio.sleep(0.2)
    [t] = await live_transcriptions(client, 1)
    link = (await client.get(f"/transcriptions/{t['transcriptionId']}/access-link")).json()["accessLink"]
    async with httpx.AsyncClient(timeout=10) as plain:
        text = (await plain.get(link)).text
    assert "Gustav: See you all tomorrow." in text and "ghost" not in text and "See you\n" not in text, text


async def test_no_live_transcription_and_triggers(server: ThreadServer, client: httpx.AsyncClient) -> None:
    plain = await create_meeting(client)
    async with Client(server.ws_url, plain["roomName"]) as host:
        joined = await host.join(roomKey=room_key(plain["hostRoomUrl"]))
        assert "captions" not in joined
        await host.send({"type": "captions_start"})
        status = await host.expect("captions")
        assert status["state"] == "unavailable" and "not enabled" in status["message"]

    # automatic-2nd-participant: nothing for one person, a start when the second joins (told to the hosts:
    # this server runs no captioner).
    auto = await create_meeting(client, liveTranscription={**MANUAL, "startTrigger": "automatic-2nd-participant"})
    async with Client(server.ws_url, auto["roomName"]) as host, Client(server.ws_url, auto["roomName"]) as guest:
        await host.join(roomKey=room_key(auto["hostRoomUrl"]))
        await host.nothing(0.5, ignore=("ping",))
        await guest.join()
        status = await host.expect("captions", timeout=10)
        assert status["state"] == "unavailable"
        assert not [x for x in await guest.drain(0.3) if x.get("type") == "captions"]  # to the hosts only
