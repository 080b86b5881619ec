"""Room sessions from room events: start at the second participant, end after the grace period; the webhooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from herewith.config import Settings
from herewith.webhooks.signing import verify_signature
from tests.webhooks.helpers import Receiver, Room, await_for, person


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, secret_key="test-secret-key-0123456789abcdef",
                    background_tasks=True, sweeper_interval_seconds=0.1, webhook_poll_seconds=0.1,
                    session_grace_seconds=60)


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


async def _setup(client, server, org, receiver):
    hook = (await client.post("/webhooks", json={"url": receiver.url})).json()
    meeting = (await client.post("/meetings", json={"endDate": "2099-02-18T14:23:00.000Z"})).json()
    return hook, Room(server, meeting, org.organization_id)


async def test_two_join_and_leave_gives_session_and_six_signed_events(client, server, org, receiver):
    hook, room = await _setup(client, server, org, receiver)
    a = room.join(person("Ann", "host", external_id="ext-a", metadata="m-a", device_id="dev-a", user_agent="UA-A"))
    server.clock.advance(25)
    b = room.join(person("Bob", "visitor", external_id="ext-b", device_id="dev-b"))
    server.clock.advance(85)
    room.leave(a)
    server.clock.advance(10)
    room.leave(b)
    await await_for(lambda: len(receiver.events()) >= 5)
    assert "room.session.ended" not in receiver.types()  # still in the grace period
    server.clock.advance(61)
    await await_for(lambda: len(receiver.events()) >= 6)
    assert receiver.types() == ["room.client.joined", "room.client.joined", "room.session.started",
                                "room.client.left", "room.client.left", "room.session.ended"]
    for r in receiver.received:
        for name in ("Whereby-Signature", "Herewith-Signature"):
            assert verify_signature(hook["secret"], r.headers[name], r.body)
        assert b", " not in r.body and b": " not in r.body  # compact JSON
    events = receiver.events()
    assert len({e["id"] for e in events}) == 6
    j1, j2, started, l1, l2, ended = events
    session_id = started["data"]["roomSessionId"]
    assert j1["apiVersion"] == "1.0" and j1["data"]["roomSessionId"] is None
    assert j1["data"] == {"meetingId": room.meeting["meetingId"], "roomName": room.meeting["roomName"],
                          "roomSessionId": None, "participantId": a.participant_id, "displayName": "Ann",
                          "metadata": "m-a", "externalId": "ext-a", "roleName": "host", "numClients": 1,
                          "numClientsByRoleName": {"host": 1}}
    assert j2["data"]["roomSessionId"] == session_id and j2["data"]["numClients"] == 2
    assert j2["data"]["numClientsByRoleName"] == {"host": 1, "visitor": 1}
    assert started["data"] == {"meetingId": room.meeting["meetingId"], "roomName": room.meeting["roomName"],
                               "roomSessionId": session_id}
    assert l1["data"]["participantId"] == a.participant_id and l1["data"]["numClients"] == 1
    assert l2["data"]["numClients"] == 0 and l2["data"]["roomSessionId"] == session_id
    assert ended["data"]["roomSessionId"] == session_id
    assert ended["createdAt"] == l1["createdAt"]  # the session ended when fewer than two remained

    s = (await client.get("/insights/room-sessions", params={"roomName": room.meeting["roomName"]})).json()
    assert [x["roomSessionId"] for x in s["results"]] == [session_id]
    assert s["results"][0]["endedAt"] == l1["createdAt"]
    assert s["results"][0]["totalUniqueParticipants"] == 2
    assert s["results"][0]["totalParticipantMinutes"] == 2 + 2  # Ann ~110 s, Bob ~95 s: each rounded up
