"""The server killed with -9 while events are pending: they are delivered after the restart, each once
(at least once, with the same event id), signed; nothing lost."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from herewith.config import Settings
from herewith.webhooks.signing import verify_signature
from tests.signaling.helpers import Client, create_meeting
from tests.support.servers import ProcessServer, create_org_key
from tests.webhooks.helpers import Receiver, await_for


def _env(settings: Settings) -> dict[str, str]:
    env = {
        "HEREWITH_DATA_DIR": str(settings.data_dir),
        "HEREWITH_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "HEREWITH_WEBHOOK_POLL_SECONDS": "0.1",
        "HEREWITH_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        "HEREWITH_WEBHOOK_RETRY_MAX_INTERVAL_SECONDS": "0.5",
        "HEREWITH_SESSION_GRACE_SECONDS": "1",
        "HEREWITH_SWEEPER_INTERVAL_SECONDS": "0.2",
        "HEREWITH_LOG_LEVEL": "warning",
    }
    if settings.database_url:
        env["HEREWITH_DATABASE_URL"] = settings.database_url
    return env


@pytest.mark.timeout(120)
async def test_kill_9_with_pending_events_then_restart_delivers_them(settings, tmp_path):
    receiver = Receiver()  # down for now
    env = _env(settings)
    org = await create_org_key(settings, "Crash org")
    first = ProcessServer(env, log_path=tmp_path / "server1.log").start()
    try:
        async with httpx.AsyncClient(base_url=first.base_url + "/v1", headers=org.headers) as api:
            hook = (await api.post("/webhooks", json={"url": receiver.url})).json()
            meeting = await create_meeting(api)
            ws_url = first.base_url.replace("http", "ws")
            async with Client(ws_url, meeting["roomName"]) as ann, Client(ws_url, meeting["roomName"]) as bob:
                await ann.join(displayName="Ann")
                await bob.join(displayName="Bob")
                await ann.send({"type": "leave"})
                await bob.send({"type": "leave"})
                await ann.closed()
                await bob.closed()

            async def failed_types() -> set[str]:
                log = (await api.get(f"/webhooks/{hook['webhookId']}/deliveries", params={"limit": 100})).json()
                return {d["type"] for d in log["results"] if not d["succeeded"]}

            # Every event was tried and failed at least once (session.ended after the 1 s grace period).
            for _ in range(200):
                if len(await failed_types()) == 5:
                    break
                await asyncio.sleep(0.05)
            assert await failed_types() == {"room.client.joined", "room.session.started", "room.client.left",
                                            "room.session.ended"} | {"room.client.left"}
    finally:
        first.kill9()
    receiver.start()
    second = ProcessServer(env, log_path=tmp_path / "server2.log").start()
    try:
        await await_for(lambda: len({e["id"] for e in receiver.events()}) >= 6, timeout=30)
        await asyncio.sleep(1.0)
        events = receiver.events()
        assert sorted(e["type"] for e in {e["id"]: e for e in events}.values()) == sorted(
            ["room.client.joined", "room.client.joined", "room.session.started", "room.client.left",
             "room.client.left", "room.session.ended"])
        by_id: dict[str, bytes] = {}
        for r in receiver.received:
            assert verify_signature(hook["secret"], r.headers["Whereby-Signature"], r.body)
            by_id.setdefault(r.json["id"], r.body)
            assert by_id[r.json["id"]] == r.body  # a duplicate is byte for byte the same event
        async with httpx.AsyncClient(base_url=second.base_url + "/v1", headers=org.headers) as api:
            log = (await api.get(f"/webhooks/{hook['webhookId']}/deliveries", params={"limit": 100})).json()
            assert {d["eventId"] for d in log["results"] if d["succeeded"]} == set(by_id)
    finally:
        second.stop()
        receiver.stop()
