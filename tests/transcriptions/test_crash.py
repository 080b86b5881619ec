"""``kill -9`` of the server while it transcribes: the job is a row in the database, so after a restart the
claim of the dead process lapses (its node row stops beating) and the transcription runs again to ``ready``,
never stuck ``in_progress``; its speech worker does not outlive the killed server for long."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from herewith.config import Settings
from herewith.db.engine import create_engine, create_sessionmaker
from tests.support.servers import ProcessServer, create_org_key
from tests.transcriptions.helpers import lines_of, seed_recording_with_tracks, wait_state
from tests.webhooks.helpers import Receiver, await_for

pytest.importorskip("faster_whisper", reason="the speech extra is not installed (pip install -e '.[speech]')")


def _env(settings: Settings) -> dict[str, str]:
    env = {
        "HEREWITH_DATA_DIR": str(settings.data_dir),
        "HEREWITH_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "HEREWITH_STT_MODEL": "tiny.en",
        "HEREWITH_NODE_HEARTBEAT_SECONDS": "0.5",
        "HEREWITH_NODE_DEAD_AFTER_SECONDS": "2",
        "HEREWITH_TRANSCRIPTION_POLL_SECONDS": "0.2",
        "HEREWITH_WEBHOOK_POLL_SECONDS": "0.1",
        "HEREWITH_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "HEREWITH_LOG_LEVEL": "warning",
    }
    if settings.database_url:
        env["HEREWITH_DATABASE_URL"] = settings.database_url
    return env


async def _row(settings: Settings, transcription_id: str) -> tuple[str, str | None, int]:
    from herewith.transcriptions.repository import get

    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as s:
            t = await get(s, transcription_id)
            return t.state, t.node_id, t.attempts
    finally:
        await engine.dispose()


def _children(pid: int) -> list[int]:
    """The speech worker processes of a server (multiprocessing's spawned children, not its resource tracker)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    workers = []
    for child in (int(p) for p in out.stdout.split()):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            workers.append(child)
    return workers


@pytest.mark.timeout(420)
async def test_kill_9_mid_transcription_then_restart_finishes_it(settings, speech_tracks, tmp_path: Path):
    env = _env(settings)
    org = await create_org_key(settings, "Crash org")
    seeded = await seed_recording_with_tracks(settings, org.organization_id,
                                              [("Alice", speech_tracks["Alice"]), ("Bob", speech_tracks["Bob"])])
    receiver = Receiver().start()
    first = ProcessServer(env, log_path=tmp_path / "server1.log").start(timeout=120)
    try:
        async with httpx.AsyncClient(base_url=first.base_url + "/v1", headers=org.headers, timeout=30) as api:
            await api.post("/webhooks", json={"url": receiver.url, "events": ["transcription.finished"]})
            r = await api.post("/transcriptions", json={"recordingId": seeded.recording_id})
            assert r.status_code == 201
            tid = r.json()["transcriptionId"]
            # claimed by the first server, and its speech worker process is running
            claimed = None
            for _ in range(300):
                state, node_id, attempts = await _row(settings, tid)
                if node_id is not None and _children(first.proc.pid):
                    claimed = (state, node_id, attempts)
                    break
                await asyncio.sleep(0.1)
            assert claimed is not None and claimed[0] == "in_progress" and claimed[2] == 1, claimed
            workers = _children(first.proc.pid)
            first.kill9()
    finally:
        if first.proc is not None and first.proc.poll() is None:
            first.stop()
    # the killed server's speech worker ends on its own (its call queue is gone)
    await await_for(lambda: not any(os.path.exists(f"/proc/{pid}") and _alive(pid) for pid in workers), timeout=60)
    state, node_id, _ = await _row(settings, tid)
    assert state == "in_progress" and node_id == claimed[1]  # what the kill left

    second = ProcessServer(env, log_path=tmp_path / "server2.log").start(timeout=120)
    try:
        async with httpx.AsyncClient(base_url=second.base_url + "/v1", headers=org.headers, timeout=30) as api:
            done = await wait_state(api, f"/transcriptions/{tid}", timeout=150)
            assert done["state"] == "ready", done
            link = (await api.get(f"/transcriptions/{tid}/access-link")).json()["accessLink"]
            async with httpx.AsyncClient(timeout=30) as plain:
                markdown = (await plain.get(link)).text
            assert [speaker for _, speaker, _ in lines_of(markdown)] == ["Alice", "Bob", "Alice"], markdown
        state, node_id, attempts = await _row(settings, tid)
        assert (state, node_id, attempts) == ("ready", None, 2)
        await await_for(lambda: receiver.events("transcription.finished"), timeout=20)
        assert len(receiver.events("transcription.finished")) == 1
    finally:
        second.stop()
        receiver.stop()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False

