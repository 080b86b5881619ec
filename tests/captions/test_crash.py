"""``kill -9`` of the server during a live-captioned room session: the final captions relayed so far are rows in
the database (herewith.captions.models), so after a restart the session's ``LIVE_TRANSCRIPTION`` is stored from
them (the dead node's rows are taken by the live one) with every line, and the rows are gone.

Real ``herewith serve`` processes on 127.0.0.1, real WebSocket clients (the captioner is a WebSocket client with a
``captioner`` room key, as in tests/captions/test_signaling.py), SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from herewith.auth.room_keys import issue_room_key
from herewith.captions.models import CaptionLineRow
from herewith.config import Settings
from herewith.db.engine import create_engine, create_sessionmaker
from tests.signaling.helpers import Client, create_meeting, room_key
from tests.support.servers import ProcessServer, create_org_key

pytestmark = pytest.mark.timeout(240)

MANUAL = {"destination": None, "startTrigger": "manual", "language": "en", "liveCaptions": True}


def _env(settings: Settings) -> dict[str, str]:
    env = {
        "HEREWITH_DATA_DIR": str(settings.data_dir),
        "HEREWITH_SECRET_KEY": settings.secret_key,
        "HEREWITH_LIVE_CAPTIONS_PER_NODE": "0",
        "HEREWITH_NODE_HEARTBEAT_SECONDS": "0.5",
        "HEREWITH_NODE_DEAD_AFTER_SECONDS": "2",
        "HEREWITH_LOG_LEVEL": "warning",
    }
    if settings.database_url:
        env["HEREWITH_DATABASE_URL"] = settings.database_url
    return env


async def _kept_lines(settings: Settings) -> int:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as s:
            return int(await s.scalar(select(func.count()).select_from(CaptionLineRow)) or 0)
    finally:
        await engine.dispose()


async def _until(check, timeout: float):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


async def test_kill_9_mid_session_then_restart_stores_the_captions_so_far(settings: Settings, tmp_path: Path) -> None:
    org = await create_org_key(settings, "Captions crash org")
    first = ProcessServer(_env(settings), log_path=tmp_path / "server1.log").start(timeout=120)
    try:
        async with httpx.AsyncClient(base_url=first.base_url + "/v1", headers=org.headers, timeout=30) as api:
            m = await create_meeting(api, liveTranscription=MANUAL)
        ws_url = first.base_url.replace("http://", "ws://")
        end = datetime.fromisoformat(m["endDate"].replace("Z", "+00:00"))
        key = issue_room_key(settings.signing_key, m["roomName"], "captioner", end)
        async with Client(ws_url, m["roomName"]) as host, Client(ws_url, m["roomName"]) as captioner:
            await host.join(displayName="Hannah", roomKey=room_key(m["hostRoomUrl"]))
            await captioner.join(displayName="Live captions", roomKey=key, audio=False, video=False)
            for n, text in enumerate(["Good morning, everyone.", "The budget review comes first."]):
                await captioner.send({"type": "caption", "participantId": host.id, "text": text, "final": True,
                                      "utteranceId": f"{host.id}.{n}"})
                await host.expect("caption", final=True, text=text)
            # relayed, and kept in the database: what a crash must not lose
            assert await _until(lambda: _kept_lines_is(settings, 2), 10), "the captions were not kept"
            first.kill9()
    finally:
        if first.proc is not None and first.proc.poll() is None:
            first.stop()

    second = ProcessServer(_env(settings), log_path=tmp_path / "server2.log").start(timeout=120)
    try:
        async with httpx.AsyncClient(base_url=second.base_url + "/v1", headers=org.headers, timeout=30) as api:
            async def live() -> list[dict]:
                r = await api.get("/transcriptions")
                assert r.status_code == 200, r.text
                return [t for t in r.json()["results"] if t["type"] == "LIVE_TRANSCRIPTION"]

            found = await _until(live, 30)
            assert len(found) == 1, found
            t = found[0]
            assert t["roomName"] == m["roomName"] and t["state"] == "ready", t
            link = (await api.get(f"/transcriptions/{t['transcriptionId']}/access-link")).json()["accessLink"]
            async with httpx.AsyncClient(timeout=10) as plain:
                text = (await plain.get(link)).text
            assert "Hannah: Good morning, everyone." in text and "Hannah: The budget review comes first." in text, text
        assert await _kept_lines(settings) == 0
    finally:
        second.stop()


async def _kept_lines_is(settings: Settings, n: int) -> bool:
    return await _kept_lines(settings) == n
