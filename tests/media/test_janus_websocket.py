"""herewith.media.janus over Janus's WebSocket transport: one connection for every session of a client, events
routed to their session, and a dropped connection = sessions lost, recovered by a new session.

A small TCP relay sits between the client and Janus: it counts the connections the client opens and cuts them
like a network failure would (both directions closed at once), with Janus left running.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from herewith.media.janus import VIDEOROOM, JanusClient, JanusSessionLost, VideoRoomAdmin
from herewith.media.supervisor import JanusSupervisor

from .tcp_relay import Relay

pytestmark = [pytest.mark.netns, pytest.mark.parametrize("janus", ["websocket"], indirect=True)]


@pytest.fixture
async def relay(janus: JanusSupervisor) -> AsyncIterator[Relay]:
    r = Relay((janus.bind, janus.ws_port))
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def ws_client(janus: JanusSupervisor, relay: Relay) -> AsyncIterator[JanusClient]:
    async with JanusClient(f"ws://127.0.0.1:{relay.port}", janus.api_secret, janus.admin_url, janus.admin_secret) as c:
        yield c


async def joined(session: Any, room: int, display: str) -> Any:
    handle = await session.attach()
    data, _ = await handle.message({"request": "join", "ptype": "publisher", "room": room, "display": display})
    assert data["videoroom"] == "joined"
    return handle, int(data["id"])


async def until(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.1)


async def test_sessions_share_one_connection_and_get_their_own_events(
    ws_client: JanusClient, relay: Relay, rooms: VideoRoomAdmin
) -> None:
    rid = secrets.randbelow(10**9) + 1
    await rooms.create_room(rid, secret="s", notify_joining=True)
    alice_s, bob_s = await ws_client.create_session(), await ws_client.create_session()
    assert ws_client.transport == "websocket" and alice_s.id != bob_s.id
    alice, alice_id = await joined(alice_s, rid, "alice")
    bob, bob_id = await joined(bob_s, rid, "bob")
    assert relay.accepted == 1  # both sessions, their handles and joins: one WebSocket

    ev = await alice.wait_for("event", 10, plugin_event="joining")  # bob joined: an event for alice's session only
    assert ev["session_id"] == alice_s.id and ev["sender"] == alice.id
    assert ev["plugindata"]["data"]["joining"] == {"id": bob_id, "display": "bob"}
    info = await ws_client.handle_info(bob_s.id, bob.id)
    assert info["session_transport"] == "janus.transport.websockets"

    await bob.detach()
    ev = await alice.wait_for("event", 10, plugin_event="leaving")
    assert ev["plugindata"]["data"]["leaving"] == bob_id
    assert [p["display"] for p in await rooms.list_participants(rid)] == ["alice"]
    for s in (alice_s, bob_s):
        await s.destroy()
    await until(lambda: _no_participants(rooms, rid))
    await rooms.destroy_room(rid, secret="s")


async def _no_participants(rooms: VideoRoomAdmin, rid: int) -> bool:
    return await rooms.list_participants(rid) == []


async def test_a_dropped_connection_loses_its_sessions_and_a_new_session_recovers(
    ws_client: JanusClient, relay: Relay, rooms: VideoRoomAdmin
) -> None:
    rid = secrets.randbelow(10**9) + 1
    await rooms.create_room(rid, secret="s", notify_joining=True)
    sessions = [await ws_client.create_session() for _ in range(2)]
    handles = [(await joined(s, rid, f"p{i}"))[0] for i, s in enumerate(sessions)]
    assert len(await rooms.list_participants(rid)) == 2

    relay.cut()
    await asyncio.wait_for(asyncio.gather(*(s.lost.wait() for s in sessions)), 5)
    assert all("WebSocket" in (s.lost_reason or "") for s in sessions), [s.lost_reason for s in sessions]
    for h in handles:  # the handle's consumers (SfuPeer) learn it through their queue
        assert h.closed and (await h.wait_for("detached", 2))["reason"].startswith("Janus WebSocket")
    with pytest.raises(JanusSessionLost):
        await sessions[0].attach()
    # Janus destroys the sessions of a closed WebSocket: the participants leave the room
    await until(lambda: _no_participants(rooms, rid))
    alive = set(await ws_client.list_sessions())
    assert not alive & {s.id for s in sessions}

    session = await ws_client.create_session()  # the next request opens a new connection
    assert relay.accepted == 2
    handle, feed = await joined(session, rid, "p0-again")
    assert [(p["id"], p["display"]) for p in await rooms.list_participants(rid)] == [(feed, "p0-again")]
    other = await ws_client.create_session()
    _, other_feed = await joined(other, rid, "p1-again")
    ev = await handle.wait_for("event", 10, plugin_event="joining")  # events reach the new sessions
    assert ev["plugindata"]["data"]["joining"]["id"] == other_feed
    for s in (session, other):
        await s.destroy()
    await rooms.destroy_room(rid, secret="s")


async def test_a_session_janus_destroyed_is_lost_and_the_others_on_the_connection_stay(janus: JanusSupervisor) -> None:
    """E.g. a removed participant's session destroyed through the admin API: only that session ends."""
    async with janus.client() as c:
        quiet, kept = await c.create_session(), await c.create_session()
        await c.destroy_session(quiet.id)
        with pytest.raises(JanusSessionLost):
            await quiet.attach()
        assert quiet.lost.is_set() and not kept.lost.is_set()
        assert (await kept.attach(VIDEOROOM)).id > 0
        await kept.destroy()
