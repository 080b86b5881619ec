"""herewith.media.janus against a real Janus (started by JanusSupervisor) and real aiortc peers."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from herewith.media.janus import (
    VIDEOROOM,
    JanusClient,
    JanusError,
    JanusSession,
    JanusSessionLost,
    JanusUnavailable,
    VideoRoomAdmin,
)
from herewith.media.supervisor import JanusSupervisor

from .peers import publish, subscribe

pytestmark = pytest.mark.netns


def room_id() -> int:
    return secrets.randbelow(10**9) + 1


async def test_info_names_the_videoroom_plugin_only(client: JanusClient) -> None:
    info = await client.info()
    assert list(info["plugins"]) == [VIDEOROOM]
    assert sorted(info["transports"]) == ["janus.transport.http", "janus.transport.websockets"]
    assert info["api_secret"] is True and info["auth_token"] is True


async def test_requests_without_secret_or_token_are_refused(janus: JanusSupervisor) -> None:
    async with JanusClient(janus.url) as anonymous:
        with pytest.raises(JanusError) as err:
            await anonymous.create_session()
    assert err.value.code == 403


async def test_create_and_destroy_a_protected_room(rooms: VideoRoomAdmin) -> None:
    rid = room_id()
    created = await rooms.create_room(rid, secret="s3cret", description="standup", publishers=200)
    assert created["videoroom"] == "created" and created["room"] == rid
    assert await rooms.exists(rid)
    listed = {r["room"]: r for r in await rooms.list_rooms()}
    assert listed[rid]["max_publishers"] == 200 and listed[rid]["is_private"] is True

    with pytest.raises(JanusError) as err:
        await rooms.destroy_room(rid, secret="wrong")
    assert err.value.code == 433  # unauthorized: wrong room secret
    await rooms.destroy_room(rid, secret="s3cret")
    assert not await rooms.exists(rid)
    with pytest.raises(JanusError) as err:
        await rooms.destroy_room(rid, secret="s3cret")
    assert err.value.code == 426  # no such room


async def test_create_without_the_admin_key_is_refused(rooms: VideoRoomAdmin) -> None:
    rid = room_id()
    for key in (None, "not-the-key"):
        with pytest.raises(JanusError) as err:
            await VideoRoomAdmin(rooms.handle, admin_key=key).create_room(rid, secret="x")
        assert err.value.code in (429, 433)  # missing admin_key / wrong admin_key
    assert not await rooms.exists(rid)


async def test_participant_token_is_limited_to_its_role(janus: JanusSupervisor, client: JanusClient) -> None:
    """A core token (admin add_token) opens the API for the VideoRoom only, not room management."""
    token = secrets.token_urlsafe(16)
    assert await client.add_token(token) == [VIDEOROOM]
    async with JanusClient(janus.url, token=token) as browser:
        s = await browser.create_session()
        rooms = VideoRoomAdmin(await s.attach(VIDEOROOM))
        with pytest.raises(JanusError):
            await rooms.create_room(room_id(), secret="x")  # no admin_key
        with pytest.raises(JanusError) as err:
            await s.attach("janus.plugin.echotest")
        assert err.value.code == 460  # only the VideoRoom is loaded at all
        await client.remove_token(token)
        with pytest.raises(JanusError) as err:
            await s.attach(VIDEOROOM)
        assert err.value.code == 403
        await s.destroy()


async def test_room_acl_refuses_a_publisher_join_without_a_token(
    session: JanusSession, rooms: VideoRoomAdmin, pinned_ice: str
) -> None:
    """The room's `allowed` list gates publishing; subscribing does not need a token (Janus 1.1)."""
    rid = room_id()
    await rooms.create_room(rid, secret="s", allowed=["host-token"])
    viewer = await session.attach()
    with pytest.raises(JanusError) as err:
        await viewer.message({"request": "join", "ptype": "publisher", "room": rid, "display": "viewer"})
    assert err.value.code == 433
    pub = await publish(session, rid, token="host-token")
    sub = await subscribe(session, rid, pub.feed_id)  # no token needed to watch
    await asyncio.wait_for(sub.first_frame.wait(), 20)
    await rooms.allowed(rid, "remove", secret="s", tokens=["host-token"])
    again = await session.attach()
    with pytest.raises(JanusError):
        await again.message({"request": "join", "ptype": "publisher", "room": rid, "token": "host-token"})
    for pc in (pub.pc, sub.pc):
        await pc.close()
    await rooms.destroy_room(rid, secret="s")


async def test_empty_room_acl_admits_nobody_until_a_token_is_added(session: JanusSession, rooms: VideoRoomAdmin) -> None:
    rid = room_id()
    await rooms.create_room(rid, secret="s", allowed=[])  # how Herewith creates group rooms
    with pytest.raises(JanusError) as err:
        await (await session.attach()).message({"request": "join", "ptype": "publisher", "room": rid})
    assert err.value.code == 433
    assert await rooms.allowed(rid, "add", secret="s", tokens=["member-1"]) == ["member-1"]
    data, _ = await (await session.attach()).message({"request": "join", "ptype": "publisher", "room": rid, "token": "member-1"})
    assert data["videoroom"] == "joined"
    await rooms.destroy_room(rid, secret="s")


async def test_one_publisher_two_subscribers_receive_frames(
    session: JanusSession, rooms: VideoRoomAdmin, pinned_ice: str
) -> None:
    rid = room_id()
    await rooms.create_room(rid, secret="s", publishers=10)
    pub = await publish(session, rid, display="alice")
    subs = [await subscribe(session, rid, pub.feed_id) for _ in range(2)]
    await asyncio.wait_for(asyncio.gather(*(s.first_frame.wait() for s in subs)), 20)
    before = [s.frames for s in subs]
    await asyncio.sleep(1.0)
    assert all(s.frames > b + 5 for s, b in zip(subs, before, strict=True)), [s.frames for s in subs]
    participants = await rooms.list_participants(rid)
    assert [(p["id"], p["display"], p["publisher"]) for p in participants] == [(pub.feed_id, "alice", True)]
    for pc in (pub.pc, *(s.pc for s in subs)):
        await pc.close()
    await rooms.destroy_room(rid, secret="s")


async def test_kick_removes_a_participant(session: JanusSession, rooms: VideoRoomAdmin, pinned_ice: str) -> None:
    rid = room_id()
    await rooms.create_room(rid, secret="s")
    pub = await publish(session, rid, display="bob")
    sub = await subscribe(session, rid, pub.feed_id)
    await asyncio.wait_for(sub.first_frame.wait(), 20)

    with pytest.raises(JanusError):
        await rooms.kick(rid, pub.feed_id, secret="wrong")
    await rooms.kick(rid, pub.feed_id, secret="s")

    await pub.handle.wait_for("hangup", 10)  # Janus closed the kicked publisher's PeerConnection
    assert await rooms.list_participants(rid) == []
    frames = sub.frames
    await asyncio.sleep(0.5)
    assert sub.frames - frames <= 2  # nothing is relayed any more
    with pytest.raises(JanusError):  # the kicked handle cannot publish again in that room
        await pub.handle.message({"request": "configure", "video": True})
    for pc in (pub.pc, sub.pc):
        await pc.close()
    await rooms.destroy_room(rid, secret="s")


async def test_admin_api_lists_sessions_and_handles(client: JanusClient, session: JanusSession) -> None:
    handle = await session.attach(opaque_id="participant-42")
    assert session.id in await client.list_sessions()
    assert handle.id in await client.list_handles(session.id)
    info = await client.handle_info(session.id, handle.id)
    assert info["plugin"] == VIDEOROOM and info["opaque_id"] == "participant-42"
    await handle.detach()
    assert handle.id not in await client.list_handles(session.id)


async def test_destroyed_session_refuses_requests(client: JanusClient) -> None:
    s = await client.create_session()
    await client.destroy_session(s.id)  # e.g. a removed participant's session, through the admin API
    with pytest.raises(JanusSessionLost):
        await s.attach()
    await asyncio.wait_for(s.lost.wait(), 5)
    await s.destroy()


async def test_unreachable_janus_raises_janus_unavailable() -> None:
    from herewith.media.supervisor import free_port

    async with JanusClient(f"http://127.0.0.1:{free_port()}/janus", timeout=1.0) as nowhere:
        with pytest.raises(JanusUnavailable):
            await nowhere.info()
