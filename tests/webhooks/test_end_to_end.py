"""End to end with real WebSocket clients through the signaling endpoint: two people join and leave a room;
the receiver on 127.0.0.1 gets joined x2, session.started, left x2, session.ended, all verifiably signed; the
insights calls then show the room, the session, both participants and their real samples. And at
endDate + 1 h the people still inside are told ``ended: expired`` and disconnected, with no webhooks after.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from herewith.kit.time import format_utc
from herewith.webhooks.signing import verify_signature
from tests.signaling.helpers import Client, create_meeting, room_key
from tests.webhooks.helpers import Receiver, await_for


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


async def test_two_clients_join_and_leave(client, server, receiver):
    hook = (await client.post("/webhooks", json={"url": receiver.url})).json()
    meeting = await create_meeting(client)
    async with Client(server.ws_url, meeting["roomName"]) as ann, Client(server.ws_url, meeting["roomName"]) as bob:
        await ann.join(displayName="Ann", externalId="ann-1", metadata="crm-7", deviceId="dev-ann",
                       userAgent="UA Ann", roomKey=room_key(meeting["hostRoomUrl"]))
        await bob.join(displayName="Bob", externalId="bob-1", deviceId="dev-bob", userAgent="UA Bob")
        for i in range(3):
            await ann.send({"type": "stats", "packetLossSend": 0.1 * i, "packetLossRecv": 0.2, "bitrateSend": 500_000 + i,
                            "bitrateRecv": 400_000, "sampleRateMs": 5000})
            await bob.send({"type": "stats", "packetLossSend": 1.0, "packetLossRecv": 2.0 + i, "bitrateSend": 300_000,
                            "bitrateRecv": 200_000 + i, "sampleRateMs": 5000})
        await asyncio.sleep(0.3)
        server.clock.advance(100)
        await ann.send({"type": "leave"})
        await ann.closed()
        await bob.send({"type": "leave"})
        await bob.closed()
    await await_for(lambda: len(receiver.received) >= 5)
    server.clock.advance(61)
    await await_for(lambda: len(receiver.received) >= 6)
    await asyncio.sleep(0.3)
    assert receiver.types() == ["room.client.joined", "room.client.joined", "room.session.started",
                                "room.client.left", "room.client.left", "room.session.ended"]
    for r in receiver.received:
        assert verify_signature(hook["secret"], r.headers["Whereby-Signature"], r.body)
        assert r.headers["Herewith-Signature"] == r.headers["Whereby-Signature"]
    events = receiver.events()
    j1 = events[0]["data"]
    assert (j1["displayName"], j1["roleName"], j1["externalId"], j1["metadata"]) == ("Ann", "host", "ann-1", "crm-7")
    assert events[1]["data"]["roleName"] == "visitor" and events[1]["data"]["numClients"] == 2
    session_id = events[2]["data"]["roomSessionId"]

    rooms = (await client.get("/insights/rooms")).json()["results"]
    assert [r["roomName"] for r in rooms] == [meeting["roomName"]]
    assert rooms[0]["totalSessions"] == 1 and rooms[0]["totalUniqueParticipants"] == 2
    assert rooms[0]["totalParticipantMinutes"] == 4  # each ~100 s, rounded up per connection
    sessions = (await client.get("/insights/room-sessions", params={"roomName": meeting["roomName"]})).json()["results"]
    assert [s["roomSessionId"] for s in sessions] == [session_id] and sessions[0]["endedAt"]
    people = (await client.get("/insights/participants", params={"roomSessionId": session_id})).json()["results"]
    assert [(p["displayName"], p["roleName"], p["deviceId"]) for p in people] == [
        ("Ann", "host", "dev-ann"), ("Bob", "visitor", "dev-bob")]
    assert [p["participantId"] for p in people] == [events[0]["data"]["participantId"], events[1]["data"]["participantId"]]
    ann_detail = (await client.get("/insights/participant", params={
        "roomSessionId": session_id, "participantId": people[0]["participantId"]})).json()
    assert ann_detail[0]["userAgent"] == "UA Ann" and ann_detail[0]["sampleRateMs"] == 5000
    assert [x["value"] for x in ann_detail[0]["samples"]["bitrateSend"]] == [500_000, 500_001, 500_002]
    assert [x["value"] for x in ann_detail[0]["samples"]["packetLossSend"]] == pytest.approx([0.0, 0.1, 0.2])
    bob_detail = (await client.get("/insights/participant", params={
        "roomSessionId": session_id, "participantId": people[1]["participantId"]})).json()
    assert [x["value"] for x in bob_detail[0]["samples"]["packetLossRecv"]] == [2.0, 3.0, 4.0]


async def test_expiry_disconnects_clients_and_stops_webhooks(client, server, receiver):
    await client.post("/webhooks", json={"url": receiver.url})
    end = server.clock.now() + timedelta(minutes=5)
    meeting = await create_meeting(client, endDate=format_utc(end))
    async with Client(server.ws_url, meeting["roomName"]) as ann, Client(server.ws_url, meeting["roomName"]) as bob:
        await ann.join(displayName="Ann", roomKey=room_key(meeting["hostRoomUrl"]))
        await bob.join(displayName="Bob")
        await await_for(lambda: len(receiver.received) == 3)
        server.clock.advance((end - server.clock.now()).total_seconds() + 3600 + 1)
        for c in (ann, bob):
            ended = await c.expect("ended", timeout=10)
            assert ended["reason"] == "expired"
            await c.closed()
    await asyncio.sleep(0.5)
    assert receiver.types() == ["room.client.joined", "room.client.joined", "room.session.started"]
    # The host key gives no rights any more and the room can't be joined.
    async with Client(server.ws_url, meeting["roomName"]) as late:
        await late.send({"type": "join", "displayName": "Late", "roomKey": room_key(meeting["hostRoomUrl"])})
        code = await late.closed()
        assert code == 4410  # gone: the room was deactivated
    await asyncio.sleep(0.3)
    assert len(receiver.received) == 3
