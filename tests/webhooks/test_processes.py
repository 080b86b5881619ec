"""Two server processes on one database share the webhook queue: every event is delivered, none twice
(PostgreSQL: SKIP LOCKED claims; SQLite: conditional claims under its single writer)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timezone

import httpx
import pytest

from herewith.db.engine import create_engine, create_sessionmaker
from herewith.webhooks import service
from tests.support.servers import ProcessServer, create_org_key
from tests.webhooks.helpers import Receiver, await_for
from tests.webhooks.test_crash import _env

EVENTS = 120


@pytest.mark.timeout(180)
async def test_two_processes_deliver_each_event_once(settings, tmp_path):
    receiver = Receiver().start()
    org = await create_org_key(settings, "Two processes")
    env = _env(settings)
    servers = [ProcessServer(env, log_path=tmp_path / f"server{i}.log").start() for i in range(2)]
    try:
        async with httpx.AsyncClient(base_url=servers[0].base_url + "/v1", headers=org.headers) as api:
            hook = (await api.post("/webhooks", json={"url": receiver.url})).json()
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as s:
                now = datetime.now(timezone.utc)
                for i in range(EVENTS):
                    await service.enqueue(s, org.organization_id, "room.client.knocked", {"n": i}, now)
                await s.commit()
        finally:
            await engine.dispose()
        await await_for(lambda: len(receiver.received) >= EVENTS, timeout=60)
        await asyncio.sleep(1.5)
        ids = Counter(e["id"] for e in receiver.events())
        assert len(ids) == EVENTS and max(ids.values()) == 1
        assert sorted(e["data"]["n"] for e in receiver.events()) == list(range(EVENTS))
        async with httpx.AsyncClient(base_url=servers[1].base_url + "/v1", headers=org.headers) as api:
            log, cursor = [], None
            while True:
                page = (await api.get(f"/webhooks/{hook['webhookId']}/deliveries",
                                      params={"limit": 100, **({"cursor": cursor} if cursor else {})})).json()
                log += page["results"]
                cursor = page["cursor"]
                if not cursor:
                    break
            assert len(log) == EVENTS and all(d["succeeded"] and d["attempt"] == 1 for d in log)
    finally:
        for server in servers:
            server.stop()
        receiver.stop()
