"""Done-when of issue 5, with two real browsers: two headless Chromium join a room and leave; a receiver on
127.0.0.1 gets joined x2, session.started, left x2 and session.ended, each signed as the contract says; the
insights calls then show the room, the session, both participants and the samples their pages really sent.

Runs inside the test network namespace (WebRTC on loopback):
``ip netns exec herewith-test env HEREWITH_TEST_DATABASES=sqlite .venv/bin/pytest -m netns tests/webhooks/test_browsers.py``
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from herewith.webhooks.signing import verify_signature
from tests.e2e.conftest import browsers, join, open_page, playwright_instance, wait_media, wait_phase, with_params  # noqa: F401
from tests.webhooks.helpers import Receiver, await_for

pytestmark = pytest.mark.netns


async def test_two_browsers_webhooks_and_insights(client: httpx.AsyncClient, server, open_page) -> None:  # noqa: F811
    receiver = Receiver().start()
    try:
        hook = (await client.post("/webhooks", json={"url": receiver.url})).json()
        meeting = (await client.post("/meetings", json={"endDate": "2099-02-18T14:23:00.000Z",
                                                        "fields": ["hostRoomUrl"]})).json()
        ann = await open_page(with_params(meeting["hostRoomUrl"], displayName="Ann", externalId="ann-7",
                                          metadata="crm-1"), browser=0)
        await join(ann)
        await wait_phase(ann, "call")
        bob = await open_page(with_params(meeting["roomUrl"], displayName="Bob"), browser=1)
        await join(bob)
        await wait_phase(bob, "call")
        for page in (ann, bob):
            await wait_media(page, "s.totals.framesDecoded > 0 && s.totals.audioPacketsReceived > 0")
        await asyncio.sleep(11)  # the pages sample every 5 s: at least two samples each
        await bob.click("#leave")
        await wait_phase(bob, "ended")
        await ann.click("#leave")
        await wait_phase(ann, "ended")
        await await_for(lambda: len(receiver.received) >= 5, timeout=20)
        server.clock.advance(61)  # the grace period
        await await_for(lambda: len(receiver.received) >= 6, timeout=20)
        await asyncio.sleep(0.5)
        assert receiver.types() == ["room.client.joined", "room.client.joined", "room.session.started",
                                    "room.client.left", "room.client.left", "room.session.ended"]
        for r in receiver.received:
            assert verify_signature(hook["secret"], r.headers["Whereby-Signature"], r.body)
            assert verify_signature(hook["secret"], r.headers["Herewith-Signature"], r.body)
        events = receiver.events()
        assert events[0]["data"]["displayName"] == "Ann" and events[0]["data"]["roleName"] == "host"
        assert events[0]["data"]["externalId"] == "ann-7" and events[0]["data"]["metadata"] == "crm-1"
        assert events[1]["data"]["displayName"] == "Bob" and events[1]["data"]["roleName"] == "visitor"
        assert [e["data"]["participantId"] for e in events[3:5]] == [events[1]["data"]["participantId"],
                                                                     events[0]["data"]["participantId"]]
        session_id = events[2]["data"]["roomSessionId"]

        rooms = (await client.get("/insights/rooms", params={"roomName[exact]": meeting["roomName"]})).json()["results"]
        assert len(rooms) == 1 and rooms[0]["totalSessions"] == 1 and rooms[0]["totalUniqueParticipants"] == 2
        assert rooms[0]["totalParticipantMinutes"] == 2  # each under a minute, rounded up per connection
        sessions = (await client.get("/insights/room-sessions", params={"roomName": meeting["roomName"]})).json()
        assert [s["roomSessionId"] for s in sessions["results"]] == [session_id]
        people = (await client.get("/insights/participants", params={"roomSessionId": session_id})).json()["results"]
        assert [p["displayName"] for p in people] == ["Ann", "Bob"] and all(p["leftAt"] for p in people)
        assert all(p["deviceId"] for p in people) and people[0]["deviceId"] != people[1]["deviceId"]
        for p in people:
            (detail,) = (await client.get("/insights/participant", params={
                "roomSessionId": session_id, "participantId": p["participantId"]})).json()
            assert "Chrome" in detail["userAgent"] and detail["sampleRateMs"] == 5000
            sent = [x["value"] for x in detail["samples"]["bitrateSend"]]
            received = [x["value"] for x in detail["samples"]["bitrateRecv"]]
            assert len(sent) >= 2 and max(sent) > 10_000 and max(received) > 10_000, detail["samples"]
            assert all(0 <= x["value"] <= 100 for x in detail["samples"]["packetLossRecv"])
    finally:
        receiver.stop()
