"""A join acknowledged to the participant is in the webhook outbox, whenever the server is killed: the live
room records ``participant.joined`` (and the session start) before it sends ``joined``
(``LiveRoom._admit``). The full storm with figures is ``bench/join_storm.py``."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from tests.support.join_storm import join_and_stay, lost, outbox_events
from tests.support.servers import ProcessServer, create_org_key


@pytest.mark.timeout(180)
async def test_no_acknowledged_join_is_lost_to_a_kill_during_a_join_storm(settings, tmp_path):
    env = {"HEREWITH_DATA_DIR": str(settings.data_dir), "HEREWITH_SECRET_KEY": "test-secret-key-0123456789abcdef",
           "HEREWITH_LOG_LEVEL": "warning", "HEREWITH_WEBHOOK_RETRY_BASE_SECONDS": "3600",
           "HEREWITH_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}
    if settings.database_url:
        env["HEREWITH_DATABASE_URL"] = settings.database_url
    org = await create_org_key(settings, "Join storm")
    acknowledged: list[tuple[str, str]] = []
    rng = random.Random()
    for round_ in range(3):
        server = ProcessServer(env, log_path=tmp_path / f"server{round_}.log").start()
        try:
            async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=org.headers) as api:
                if round_ == 0:
                    assert (await api.post("/webhooks", json={"url": "http://127.0.0.1:9/down"})).status_code == 201
                rooms = [(await api.post("/meetings", json={"endDate": "2099-01-01T00:00:00Z"})).json()["roomName"]
                         for _ in range(5)]
            ws_url = server.base_url.replace("http", "ws")
            tasks = [asyncio.create_task(join_and_stay(ws_url, rooms[i // 4], acknowledged)) for i in range(20)]
            await asyncio.sleep(rng.uniform(0.05, 0.6))
        finally:
            server.kill9()
        await asyncio.gather(*tasks)
    assert acknowledged, "no join was acknowledged before the kills"
    lost_joins, lost_sessions = lost(acknowledged, await outbox_events(settings))
    assert lost_joins == []
    assert lost_sessions == []
