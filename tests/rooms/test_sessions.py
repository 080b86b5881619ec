"""Room sessions from room events: start at the second participant, end after the grace period; the webhooks."""

from __future__ import annotations

import asyncio
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


async def _sessions(client, room):
    return (await client.get("/insights/room-sessions", params={"roomName": room.meeting["roomName"]})).json()["results"]


async def _people(client, session_id):
    return (await client.get("/insights/participants", params={"roomSessionId": session_id})).json()["results"]


async def test_coming_back_within_the_grace_period_continues_the_session(client, server, org, receiver):
    _, room = await _setup(client, server, org, receiver)
    a, b = room.join(person("A")), room.join(person("B"))
    room.leave(b)
    server.clock.advance(45)
    c = room.join(person("C"))
    server.clock.advance(45)  # 90 s after B left, but only 45 s alone... never: A and C were together
    await asyncio.sleep(0.4)
    sessions = await _sessions(client, room)
    assert len(sessions) == 1 and sessions[0]["endedAt"] is None
    room.leave(a)
    room.leave(c)
    server.clock.advance(61)
    await await_for(lambda: "room.session.ended" in receiver.types())
    await asyncio.sleep(0.3)
    assert receiver.types().count("room.session.started") == 1 and receiver.types().count("room.session.ended") == 1
    sessions = await _sessions(client, room)
    assert len(sessions) == 1 and sessions[0]["totalUniqueParticipants"] == 3


async def test_session_ends_while_one_stays_and_a_new_one_includes_them(client, server, org, receiver):
    _, room = await _setup(client, server, org, receiver)
    a, b = room.join(person("A")), room.join(person("B"))
    server.clock.advance(10)
    room.leave(b)
    server.clock.advance(61)
    await await_for(lambda: "room.session.ended" in receiver.types())
    first = (await _sessions(client, room))[0]
    server.clock.advance(30)
    c = room.join(person("C"))
    await await_for(lambda: receiver.types().count("room.session.started") == 2)
    sessions = await _sessions(client, room)
    assert len(sessions) == 2 and sessions[1]["endedAt"] is None
    p1, p2 = await _people(client, first["roomSessionId"]), await _people(client, sessions[1]["roomSessionId"])
    assert [p["displayName"] for p in p1] == ["A", "B"] and [p["displayName"] for p in p2] == ["A", "C"]
    a1 = p1[0]
    assert a1["leftAt"] == first["endedAt"]  # A's part of session 1 ends with it
    assert p2[0]["participantId"] == a.participant_id and p2[0]["joinedAt"] == first["endedAt"] and p2[0]["leftAt"] is None
    # The second joined event names session 2; C's knock-free join counted two clients.
    joined_c = [e for e in receiver.events("room.client.joined") if e["data"]["participantId"] == c.participant_id][0]
    assert joined_c["data"]["roomSessionId"] == sessions[1]["roomSessionId"] and joined_c["data"]["numClients"] == 2


async def test_knock_events_carry_the_current_session(client, server, org, receiver):
    _, room = await _setup(client, server, org, receiver)
    room.join(person("A", "host"))
    room.join(person("B"))
    kim = person("Kim")
    room.knock(kim)
    room.cancel_knock(kim)
    await await_for(lambda: len(receiver.received) == 5)
    started = receiver.events("room.session.started")[0]
    for type_ in ("room.client.knocked", "room.client.knockCancelled"):
        (e,) = receiver.events(type_)
        assert e["data"]["roomSessionId"] == started["data"]["roomSessionId"]
        assert e["data"]["participantId"] == kim.participant_id and "numClients" not in e["data"]


async def test_stale_participants_are_closed_from_the_room_state(client, server, org, receiver):
    """After a crash the live room forgets people whose rows are still open: the next event's participant list
    closes them, so the session can end."""
    _, room = await _setup(client, server, org, receiver)
    a, b = room.join(person("A")), room.join(person("B"))
    room.present = []  # the live room restarted empty
    server.clock.advance(5)
    c = room.join(person("C"))
    server.clock.advance(61)
    await await_for(lambda: "room.session.ended" in receiver.types())
    (s,) = await _sessions(client, room)
    people = await _people(client, s["roomSessionId"])
    assert {p["displayName"]: bool(p["leftAt"]) for p in people} == {"A": True, "B": True}
    assert c.participant_id not in {p["participantId"] for p in people}


async def test_events_of_unknown_rooms_are_ignored_and_sinks_never_raise(client, server, org, receiver):
    _, room = await _setup(client, server, org, receiver)
    ghost = Room(server, {"roomName": "/ghost", "meetingId": "00000000-0000-0000-0000-000000000000"}, org.organization_id)
    ghost.join(person("A"))
    ghost.stats(person("A"), packetLossSend=1)
    room.stats(person("never-joined"), packetLossSend=1)
    room.join(person("B"))
    await await_for(lambda: len(receiver.received) == 1)
    assert receiver.types() == ["room.client.joined"]


async def test_a_recorder_does_not_make_a_room_session(client, server, org, receiver):
    """One person and the cloud recorder are not a session (a session is two participants); the recorder's
    own join and leave are reported with its role."""
    hook, room = await _setup(client, server, org, receiver)
    ann = room.join(person("Ann", "host"))
    rec = room.join(person("Recorder", "recorder"))
    server.clock.advance(30)
    room.leave(rec)
    room.leave(ann)
    await await_for(lambda: len(receiver.events()) >= 4)
    await asyncio.sleep(0.3)
    assert "room.session.started" not in receiver.types()
    joined = [e for e in receiver.events() if e["type"] == "room.client.joined"]
    assert [e["data"]["roleName"] for e in joined] == ["host", "recorder"]
