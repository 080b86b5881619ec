"""A server killed with -9 mid-call: after a restart its participants leave and their room session ends,
with the time the dead process was last seen, and insights show the session ended (herewith.sessions.nodes)."""

from __future__ import annotations

import time
from datetime import datetime

import httpx
import pytest

from herewith.config import Settings
from tests.signaling.helpers import Client, create_meeting
from tests.support.servers import ProcessServer, create_org_key
from tests.webhooks.helpers import Receiver, await_for


def _env(settings: Settings) -> dict[str, str]:
    env = {
        "HEREWITH_DATA_DIR": str(settings.data_dir),
        "HEREWITH_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "HEREWITH_WEBHOOK_POLL_SECONDS": "0.1",
        "HEREWITH_SESSION_GRACE_SECONDS": "1",
        "HEREWITH_SWEEPER_INTERVAL_SECONDS": "0.2",
        "HEREWITH_NODE_HEARTBEAT_SECONDS": "0.3",
        "HEREWITH_NODE_DEAD_AFTER_SECONDS": "1.5",
        "HEREWITH_LOG_LEVEL": "warning",
    }
    if settings.database_url:
        env["HEREWITH_DATABASE_URL"] = settings.database_url
    return env


def _at(event: dict) -> float:
    return datetime.fromisoformat(event["createdAt"].replace("Z", "+00:00")).timestamp()


@pytest.mark.timeout(120)
async def test_participants_of_a_killed_server_leave_at_its_last_heartbeat(settings, tmp_path):
    receiver = Receiver().start()
    env = _env(settings)
    org = await create_org_key(settings, "Dead node org")
    first = ProcessServer(env, log_path=tmp_path / "server1.log").start()
    try:
        async with httpx.AsyncClient(base_url=first.base_url + "/v1", headers=org.headers) as api:
            await api.post("/webhooks", json={"url": receiver.url})
            meeting = await create_meeting(api)
        ws_url = first.base_url.replace("http", "ws")
        ann = await Client(ws_url, meeting["roomName"]).__aenter__()
        bob = await Client(ws_url, meeting["roomName"]).__aenter__()
        await ann.join(displayName="Ann")
        await bob.join(displayName="Bob")
        await await_for(lambda: {"room.client.joined", "room.session.started"}
                        <= {e["type"] for e in receiver.events()}, timeout=20)
    finally:
        first.kill9()
        killed_at = time.time()
    for client in (ann, bob):
        try:
            await client.__aexit__(None, None, None)
        except Exception:  # noqa: BLE001 - the server is gone
            pass
    assert not any(e["type"] == "room.client.left" for e in receiver.events())

    second = ProcessServer(env, log_path=tmp_path / "server2.log").start()
    try:
        await await_for(lambda: [e["type"] for e in receiver.events()].count("room.client.left") == 2
                        and "room.session.ended" in [e["type"] for e in receiver.events()], timeout=30)
        events = {e["id"]: e for e in receiver.events()}.values()
        left = sorted((e for e in events if e["type"] == "room.client.left"), key=lambda e: e["data"]["numClients"])
        assert {e["data"]["displayName"] for e in left} == {"Ann", "Bob"}
        assert [e["data"]["numClients"] for e in left] == [0, 1]  # honest counts as each leaves
        ended = next(e for e in events if e["type"] == "room.session.ended")
        # Honest times: when the dead process was last seen (within a heartbeat of the kill), not the restart.
        for event in (*left, ended):
            assert killed_at - 2.0 <= _at(event) <= killed_at + 0.5, event
        async with httpx.AsyncClient(base_url=second.base_url + "/v1", headers=org.headers) as api:
            sessions = (await api.get("/insights/room-sessions", params={"roomName": meeting["roomName"]})).json()
            assert sessions["results"] and all(s["endedAt"] is not None for s in sessions["results"])
    finally:
        second.stop()
        receiver.stop()
