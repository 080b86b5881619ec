"""``kill -9`` of the server in the middle of a recording: the WebM on disk plays up to the kill, and after a
restart the recording is found (its node is dead: herewith.sessions.nodes), finalized from what is on disk,
listed and ``ready`` (the recording interface, section 5; issue "crash safety")."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import httpx
import pytest
import websockets

from herewith.config import Settings
from tests.recordings.helpers import duration, wait_recording
from tests.recordings.launchers import chunks, ingest_url
from tests.signaling.helpers import Client, create_meeting, room_key
from tests.support.servers import ProcessServer, create_org_key
from tests.webhooks.helpers import await_for


def _env(settings: Settings) -> dict[str, str]:
    env = {
        "HEREWITH_DATA_DIR": str(settings.data_dir),
        "HEREWITH_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "HEREWITH_RECORDER_LAUNCHER": "tests.recordings.launchers:FileDropLauncher",
        "HEREWITH_NODE_HEARTBEAT_SECONDS": "0.5",
        "HEREWITH_NODE_DEAD_AFTER_SECONDS": "2",
        "HEREWITH_RECORDING_POLL_SECONDS": "0.2",
        "HEREWITH_LOG_LEVEL": "warning",
    }
    if settings.database_url:
        env["HEREWITH_DATABASE_URL"] = settings.database_url
    return env


def _expected_duration(prefix: bytes, tmp_path: Path) -> float:
    """What a player makes of the bytes that were on disk at the kill: ffmpeg remuxes them, ffprobe measures."""
    raw, fixed = tmp_path / "prefix.webm", tmp_path / "prefix.mkv"
    raw.write_bytes(prefix)
    subprocess.run(["ffmpeg", "-v", "quiet", "-y", "-i", str(raw), "-c", "copy", str(fixed)], timeout=60)
    return duration(fixed)


@pytest.mark.timeout(150)
async def test_kill_9_mid_recording_then_restart_finalizes_what_was_on_disk(settings, webm, tmp_path):
    env = _env(settings)
    org = await create_org_key(settings, "Crash org")
    first = ProcessServer(env, log_path=tmp_path / "server1.log").start()
    sent = 0
    half = len(webm) // 2
    async with httpx.AsyncClient(base_url=first.base_url + "/v1", headers=org.headers, timeout=30) as api:
        meeting = await create_meeting(api, recording={"type": "cloud", "destination": None, "startTrigger": "none"})
        ws_url = first.base_url.replace("http", "ws")
        async with Client(ws_url, meeting["roomName"]) as host:
            await host.join(roomKey=room_key(meeting["hostRoomUrl"]))
            await host.send({"type": "recording_start"})
            recording_id = (await host.expect("recording", timeout=10, state="starting"))["recordingId"]
            dropped = settings.data_dir / "launched" / f"{recording_id}.url"
            await await_for(dropped.exists, timeout=10)
            ingest = await websockets.connect(ingest_url(dropped.read_text()), max_size=2**20, ping_interval=None)
            for chunk in chunks(webm[:half]):
                await ingest.send(chunk)
                sent += len(chunk)
            await host.expect("recording", timeout=10, state="recording")
            on_disk = settings.data_dir / "recordings" / recording_id / "composite.webm"
            await await_for(lambda: on_disk.exists() and on_disk.stat().st_size == sent, timeout=10)
            first.kill9()  # the recorder is still connected, mid-stream
            with pytest.raises(websockets.ConnectionClosed):
                for chunk in chunks(webm[half:]):
                    await ingest.send(chunk)
                    await asyncio.sleep(0.01)
            await ingest.close()
    expected = _expected_duration(webm[:sent], tmp_path)
    assert 5 < expected < 15

    second = ProcessServer(env, log_path=tmp_path / "server2.log").start()
    try:
        async with httpx.AsyncClient(base_url=second.base_url + "/v1", headers=org.headers, timeout=30) as api:
            listed = (await api.get("/recordings")).json()["results"]
            assert [r["recordingId"] for r in listed] == [recording_id]
            ready = await wait_recording(api, recording_id, timeout=60)
            assert abs(ready["duration"] - expected) <= 1.0, (ready["duration"], expected)
            assert ready["endDate"] is not None and ready["sizeInMegaBytes"] > 0
            link = (await api.get(f"/recordings/{recording_id}/access-link")).json()
            async with httpx.AsyncClient(timeout=30) as http:
                got = await http.get(link["accessLink"])
            assert got.status_code == 200
            path = tmp_path / "after-crash.mp4"
            path.write_bytes(got.content)
            assert abs(duration(path) - expected) <= 1.0
    finally:
        second.stop()
