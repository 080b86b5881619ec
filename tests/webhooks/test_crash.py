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


async def _log_with_successes(api: httpx.AsyncClient, webhook_id: str, n: int) -> list[dict]:
    """The delivery log once it records ``n`` successes (the receiver sees a request before its outcome is
    written), or as it is after 10 s."""
    for _ in range(200):
        log = (await api.get(f"/webhooks/{webhook_id}/deliveries", params={"limit": 100})).json()["results"]
        if sum(d["succeeded"] for d in log) >= n:
            break
        await asyncio.sleep(0.05)
    return log


async def _waiting(settings: Settings, webhook_id: str) -> int:
    """How many of the endpoint's events are in the outbox, not delivered or failed yet."""
    from sqlalchemy import func, select

    from herewith.db.engine import create_engine, create_sessionmaker
    from herewith.webhooks.models import WebhookEvent

    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as s:
            return await s.scalar(select(func.count()).select_from(WebhookEvent).where(
                WebhookEvent.endpoint_id == webhook_id, WebhookEvent.state.in_(("pending", "sending"))))
    finally:
        await engine.dispose()


def _env(settings: Settings) -> dict[str, str]:
    env = {
        "HEREWITH_DATA_DIR": str(settings.data_dir),
        "HEREWITH_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "HEREWITH_WEBHOOK_POLL_SECONDS": "0.1",
        "HEREWITH_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        "HEREWITH_WEBHOOK_RETRY_MAX_INTERVAL_SECONDS": "0.5",
        "HEREWITH_SESSION_GRACE_SECONDS": "1",
        "HEREWITH_SWEEPER_INTERVAL_SECONDS": "0.2",
        # The kill may land while the worker holds a claim on a batch: keep that lease short (timeout +
        # slack) so the restarted server takes the batch over within the test's wait.
        "HEREWITH_WEBHOOK_TIMEOUT_SECONDS": "2",
        "HEREWITH_WEBHOOK_LEASE_SLACK_SECONDS": "1",
        "HEREWITH_LOG_LEVEL": "warning",
        "HEREWITH_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",  # the receivers are on 127.0.0.1
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

            async def failures() -> int:
                log = (await api.get(f"/webhooks/{hook['webhookId']}/deliveries", params={"limit": 100})).json()
                return sum(not d["succeeded"] for d in log["results"])

            # All six events wait in the outbox (session.ended after the 1 s grace period) and the endpoint has
            # failed: it is held, tried once per backoff interval, not once per event.
            for _ in range(200):
                if await _waiting(settings, hook["webhookId"]) == 6 and await failures() >= 2:
                    break
                await asyncio.sleep(0.05)
            assert await _waiting(settings, hook["webhookId"]) == 6 and await failures() >= 2
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
            log = await _log_with_successes(api, hook["webhookId"], len(by_id))
            assert {d["eventId"] for d in log if d["succeeded"]} == set(by_id)
    finally:
        second.stop()
        receiver.stop()


@pytest.mark.timeout(120)
async def test_kill_9_mid_send_redelivers_the_same_event_after_the_lease(settings, tmp_path):
    """Killed while the receiver is still answering: the event is sent again after restart (at least once),
    with the same id and the same bytes."""
    from datetime import datetime, timezone

    from herewith.db.engine import create_engine, create_sessionmaker
    from herewith.webhooks import service

    receiver = Receiver(delay=3.0).start()
    env = {**_env(settings), "HEREWITH_WEBHOOK_LEASE_SLACK_SECONDS": "1"}
    org = await create_org_key(settings, "Mid-send org")
    first = ProcessServer(env, log_path=tmp_path / "server1.log").start()
    try:
        async with httpx.AsyncClient(base_url=first.base_url + "/v1", headers=org.headers) as api:
            hook = (await api.post("/webhooks", json={"url": receiver.url})).json()
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as s:
                await service.enqueue(s, org.organization_id, "room.client.knocked", {"n": 1}, datetime.now(timezone.utc))
                await s.commit()
        finally:
            await engine.dispose()
        await await_for(lambda: receiver.started >= 1, timeout=20)
    finally:
        first.kill9()
    await await_for(lambda: len(receiver.received) == 1, timeout=10)  # the receiver got the first copy anyway
    receiver.delay = 0
    second = ProcessServer(env, log_path=tmp_path / "server2.log").start()
    try:
        await await_for(lambda: len(receiver.received) == 2, timeout=30)
        a, b = receiver.received
        assert a.body == b.body and a.json["id"] == b.json["id"]
        assert verify_signature(hook["secret"], b.headers["Whereby-Signature"], b.body)
        async with httpx.AsyncClient(base_url=second.base_url + "/v1", headers=org.headers) as api:
            log = await _log_with_successes(api, hook["webhookId"], 1)
        assert [(d["attempt"], d["succeeded"]) for d in log] == [(2, True)]  # the killed attempt left no row
        await asyncio.sleep(1.0)
        assert len(receiver.received) == 2
    finally:
        second.stop()
        receiver.stop()
