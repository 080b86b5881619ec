"""Helpers of the recordings tests: ffprobe, polling the API, rows made directly in the database."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from herewith.kit.time import UTC


def probe(path: Path) -> dict[str, Any]:
    """ffprobe's format and streams of a media file."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                          "format=duration,format_name:stream=codec_type,codec_name,profile,width,height", "-of", "json",
                          str(path)], capture_output=True, check=True, timeout=60)
    return json.loads(out.stdout)


def duration(path: Path) -> float:
    return float(probe(path)["format"]["duration"])


async def wait_recording(api: httpx.AsyncClient, recording_id: str, state: str = "ready",
                         timeout: float = 60.0) -> dict[str, Any]:
    """GET the recording until it is in ``state`` (AssertionError after ``timeout`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        r = await api.get(f"/recordings/{recording_id}")
        if r.status_code == 200:
            last = r.json()
            if last["state"] == state:
                return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"recording {recording_id} not {state} after {timeout}s: {last}")


async def seed_recording(server: Any, organization_id: str, room_name: str = "/seeded-room", *, meeting_id: str | None = None,
                         started: datetime | None = None, duration_ms: int = 60_000, size_bytes: int = 2_000_000,
                         state: str = "ready", content: bytes | None = None, file_format: str = "mp4") -> str:
    """A recording row (and, with ``content``, its file in local storage) made directly in the server's database."""
    from herewith.recordings.models import Recording
    from herewith.recordings.service import download_filename

    started = started or datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    recording_id = str(uuid.uuid4())
    filename = download_filename(room_name, started, file_format)
    if content is not None:
        directory = server.settings.data_dir / "recordings" / recording_id
        directory.mkdir(parents=True, exist_ok=True)
        (directory / filename).write_bytes(content)
        size_bytes = len(content)

    async def go() -> None:
        async with server.services.sessionmaker() as s:
            s.add(Recording(
                id=recording_id, organization_id=organization_id, meeting_id=meeting_id or str(uuid.uuid4()),
                room_name=room_name, room_session_id=str(uuid.uuid4()), state=state, trigger="manual",
                file_format=file_format, storage_type="whereby", started_at=started,
                ended_at=started + timedelta(milliseconds=duration_ms) if state == "ready" else None,
                duration_ms=duration_ms if state == "ready" else None,
                size_bytes=size_bytes if state == "ready" else None,
                filename=filename if state == "ready" else None,
                storage_key=f"{recording_id}/{filename}" if state == "ready" else None,
                created_at=started, finalize_attempts=0))
            await s.commit()

    server.run_coro(go())
    return recording_id
