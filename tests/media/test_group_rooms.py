"""herewith.media.group_rooms against a real Janus: room identity, publish tokens, destroy on meeting deletion.

Run inside the test network namespace: ``ip netns exec herewith-test .venv/bin/pytest -m netns tests/media``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from herewith.media.group_rooms import GroupRoom, GroupRooms, JanusInstance, room_identity
from herewith.media.janus import JanusClient, VideoRoomAdmin
from herewith.media.supervisor import JanusSupervisor

from .tcp_relay import Relay

pytestmark = pytest.mark.netns

KEY = "group-rooms-test-key-0123456789"


def test_room_identity_is_derived_from_key_and_meeting() -> None:
    rid, secret = room_identity(KEY, "meeting-1")
    assert (rid, secret) == room_identity(KEY, "meeting-1")  # stable: any process with the key finds it
    assert 0 < rid < 2**48 and len(secret) == 32
    assert room_identity(KEY, "meeting-2")[0] != rid
    assert room_identity("another-signing-key-0123456789", "meeting-1") != (rid, secret)
    assert secret not in (str(rid), "meeting-1")


class Outbox:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_text(self, text: str) -> None:
        self.sent.append(json.loads(text))


def member(pid: str, *, sends: bool) -> SimpleNamespace:
    return SimpleNamespace(id=pid, sends=sends, outbox=Outbox(), grid=False)  # grid: receives every stream


SETTINGS = SimpleNamespace(room_max_participants_group=200, janus_room_bitrate=200_000, janus_room_idle_seconds=60.0,
                           group_audio_streams=3)


@pytest.fixture
async def group_rooms(janus: JanusSupervisor) -> AsyncIterator[GroupRooms]:
    settings = SETTINGS
    inst = JanusInstance(janus.url, janus.client(), janus.admin_key, janus)
    rooms = GroupRooms(settings, signing_key=KEY, node_id="test-node", instances=[inst])
    rooms.ready.set()
    yield rooms
    for room in list(rooms.rooms.values()):
        await room.destroy()
    await rooms.stop()


def instance(rooms: GroupRooms) -> JanusInstance:
    return next(iter(rooms.instances.values()))


async def admin(rooms: GroupRooms, fn: Any) -> Any:
    return await instance(rooms).call(fn)


async def allowed_tokens(rooms: GroupRooms, room: GroupRoom) -> set[str]:
    # "add" with no new token answers the current list
    return set(await admin(rooms, lambda r: r.allowed(room.room_id, "add", secret=room.secret, tokens=[])))


async def wait_until(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


def ref(meeting_id: str) -> SimpleNamespace:
    return SimpleNamespace(meeting_id=meeting_id, room_name=f"/{meeting_id}")


async def test_tokens_follow_admission_and_leaving(group_rooms: GroupRooms) -> None:
    room = group_rooms.room_for(ref(f"m-{secrets.token_hex(4)}"))
    assert group_rooms.room_for(ref(room.meeting_id)) is room
    assert (room.room_id, room.secret) == room_identity(KEY, room.meeting_id)

    alice, viewer = member("alice", sends=True), member("viewer", sends=False)
    await room.admitted(alice)
    await room.admitted(viewer)
    await wait_until(lambda: admin(group_rooms, lambda r: r.exists(room.room_id)))
    listed = {r["room"]: r for r in await admin(group_rooms, lambda r: r.list_rooms())}
    assert listed[room.room_id]["description"] == f"herewith:{room.meeting_id}:test-node"
    assert listed[room.room_id]["is_private"] is True and listed[room.room_id]["max_publishers"] == 200

    # a sending role gets a token in Janus's ACL, a viewer none
    assert set(room.tokens) == {"alice"}
    assert await allowed_tokens(group_rooms, room) == {room.tokens["alice"]}
    await wait_until(lambda: asyncio.sleep(0, room.peers["viewer"].session is not None))
    session = room.peers["alice"].session
    assert session is not None and session.id in await instance(group_rooms).client.list_sessions()

    # a second sender joins later: its token is added to the existing room
    bob = member("bob", sends=True)
    await room.admitted(bob)
    assert await allowed_tokens(group_rooms, room) == {room.tokens["alice"], room.tokens["bob"]}

    # leaving revokes the token and destroys the participant's Janus session
    alice_token = room.tokens["alice"]
    await room.left("alice", "removed")
    assert alice_token not in await allowed_tokens(group_rooms, room)
    assert await allowed_tokens(group_rooms, room) == {room.tokens["bob"]}
    assert session.id not in await instance(group_rooms).client.list_sessions()
    assert set(room.peers) == {"viewer", "bob"}

    # the room lost on Janus (e.g. restarted): ensure(check=True) recreates it with the current tokens
    await admin(group_rooms, lambda r: r.destroy_room(room.room_id, secret=room.secret))
    await room.ensure(check=True)
    assert await admin(group_rooms, lambda r: r.exists(room.room_id))
    assert await allowed_tokens(group_rooms, room) == {room.tokens["bob"]}


async def test_a_publish_sent_while_admission_talks_to_janus_is_kept(group_rooms: GroupRooms) -> None:
    """A knocker is admitted from the host's connection: it has ``joined`` and may send ``sfu_publish`` while
    ``admitted()`` still waits for Janus (its token being added). That publish must be answered, not refused
    with "No SFU connection" (it was, under CPU load, and the participant then never published)."""
    from aiortc import RTCPeerConnection

    from herewith.signaling import protocol as p
    from tests.media.peers import NO_ICE_SERVERS, SmallVideo

    room = group_rooms.room_for(ref(f"m-{secrets.token_hex(4)}"))
    await room.admitted(member("host", sends=True))
    await wait_until(lambda: admin(group_rooms, lambda r: r.exists(room.room_id)))

    pc = RTCPeerConnection(NO_ICE_SERVERS)
    try:
        pc.addTransceiver(SmallVideo(160, 120), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        knocker = member("knocker", sends=True)
        admission = asyncio.create_task(room.admitted(knocker))
        await asyncio.sleep(0)  # admitted() is now waiting for Janus's answer to the token "add"
        assert not admission.done()
        await room.handle(knocker, p.SfuPublish(sdp=pc.localDescription.sdp))
        await admission

        async def answered() -> bool:
            return any(m["type"] == "sfu_published" for m in knocker.outbox.sent)
        await wait_until(answered)
        assert not [m for m in knocker.outbox.sent if m["type"] == "error"], knocker.outbox.sent
        assert room.tokens["knocker"] in await allowed_tokens(group_rooms, room)
    finally:
        await pc.close()


async def test_meeting_deleted_hook_destroys_the_janus_room(group_rooms: GroupRooms) -> None:
    room = group_rooms.room_for(ref(f"m-{secrets.token_hex(4)}"))
    carol = member("carol", sends=True)
    await room.admitted(carol)
    await wait_until(lambda: admin(group_rooms, lambda r: r.exists(room.room_id)))
    await wait_until(lambda: asyncio.sleep(0, room.peers["carol"].session is not None))
    session = room.peers["carol"].session
    assert session is not None

    await group_rooms.on_meeting_deleted(SimpleNamespace(id=room.meeting_id, room_mode="group"), "deleted")
    assert not await admin(group_rooms, lambda r: r.exists(room.room_id))
    assert room.meeting_id not in group_rooms.rooms and not room.peers and not room.tokens
    assert session.id not in await instance(group_rooms).client.list_sessions()


async def test_meeting_deleted_hook_destroys_a_leftover_room(group_rooms: GroupRooms, rooms: VideoRoomAdmin) -> None:
    """A room this process does not hold (left over from before a restart) is found by its derived identity."""
    meeting_id = f"m-{secrets.token_hex(4)}"
    rid, secret = room_identity(KEY, meeting_id)
    await rooms.create_room(rid, secret=secret, description=f"herewith:{meeting_id}:old-node")
    await group_rooms.on_meeting_deleted(SimpleNamespace(id=meeting_id, room_mode="group"), "deactivated")
    assert not await rooms.exists(rid)
    # a mesh meeting has no Janus room: nothing is asked of Janus
    await group_rooms.on_meeting_deleted(SimpleNamespace(id="mesh-meeting", room_mode="normal"), "deleted")


@pytest.mark.parametrize("janus", ["websocket"], indirect=True)
async def test_a_dropped_janus_websocket_reconnects_every_participant(janus: JanusSupervisor) -> None:
    """Janus's WebSocket to this process drops (Janus itself keeps running): Janus destroys the sessions of that
    connection, so every participant's peer opens a new session over a new connection and tells its page to
    publish again (``sfu_restart``), in the room that still exists with the same tokens."""
    relay = Relay((janus.bind, janus.ws_port))
    await relay.start()
    url = f"ws://127.0.0.1:{relay.port}"
    inst = JanusInstance(url, JanusClient(url, janus.api_secret, janus.admin_url, janus.admin_secret), janus.admin_key)
    rooms = GroupRooms(SETTINGS, signing_key=KEY, node_id="test-node", instances=[inst])  # type: ignore[arg-type]
    rooms.ready.set()
    try:
        room = rooms.room_for(ref(f"m-{secrets.token_hex(4)}"))
        people = [member("alice", sends=True), member("bob", sends=True), member("viewer", sends=False)]
        for m in people:
            await room.admitted(m)

        async def connected() -> bool:
            return all(p.session is not None and not p.session.lost.is_set() for p in room.peers.values())
        await wait_until(connected)
        old = {pid: peer.session.id for pid, peer in room.peers.items() if peer.session}
        tokens = dict(room.tokens)
        assert relay.accepted == 1  # the control session and the three participants' sessions: one WebSocket

        relay.cut()

        async def reconnected() -> bool:
            return await connected() and all(p.session and p.session.id != old[pid] for pid, p in room.peers.items())
        await wait_until(reconnected)
        assert relay.accepted == 2
        for m in people:
            assert any(msg["type"] == "sfu_restart" for msg in m.outbox.sent), m.outbox.sent
        async with janus.client(transport="http") as direct:
            live = set(await direct.list_sessions())
        assert {p.session.id for p in room.peers.values() if p.session} <= live and not set(old.values()) & live
        assert room.tokens == tokens and await allowed_tokens(rooms, room) == set(tokens.values())
        await room.destroy()
    finally:
        await rooms.stop()
        await relay.stop()
