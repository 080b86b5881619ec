"""Helpers of the transcription tests: the speech of two participants, a ready recording with their audio
tracks made directly in the server's database, polling the API."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from herewith.config import Settings
from herewith.db.engine import create_engine, create_sessionmaker
from herewith.kit.time import UTC

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

#: Two participants' words, each (start second, sentence): Alice, then Bob, then Alice again.
ALICE = [(0.5, "Good morning everyone, thanks for joining the weekly project meeting."),
         (17.0, "We decided to delay the mobile release by one week.")]
BOB = [(7.5, "Thanks Alice. The engineering team finished the new login page and the payment integration.")]
TRACK_SECONDS = 22.0


@dataclass
class SeededRecording:
    recording_id: str
    meeting_id: str
    room_name: str


async def seed_recording_with_tracks(settings: Settings, organization_id: str, tracks: list[tuple[str, Path]], *,
                                     room_name: str = "/weekly-sync", state: str = "ready",
                                     started: datetime = T0, duration_ms: int = int(TRACK_SECONDS * 1000)) -> SeededRecording:
    """A recording row with one audio track per ``(display name, audio file)`` (files copied into local storage
    where the recording job would have put them), made directly in the server's database."""
    from herewith.recordings.models import Recording, RecordingTrack
    from herewith.recordings.service import download_filename

    recording_id, meeting_id = str(uuid.uuid4()), str(uuid.uuid4())
    filename = download_filename(room_name, started, "mp4")
    rows: list[Any] = [Recording(
        id=recording_id, organization_id=organization_id, meeting_id=meeting_id, room_name=room_name,
        room_session_id=str(uuid.uuid4()), state=state, trigger="manual", file_format="mp4", storage_type="whereby",
        started_at=started, ended_at=started + timedelta(milliseconds=duration_ms) if state == "ready" else None,
        duration_ms=duration_ms if state == "ready" else None, size_bytes=1000 if state == "ready" else None,
        filename=filename if state == "ready" else None,
        storage_key=f"{recording_id}/{filename}" if state == "ready" else None, created_at=started,
        finalize_attempts=0)]
    for i, (name, source) in enumerate(tracks):
        stream = f"p{i}-{uuid.uuid4().hex[:8]}"
        key = f"{recording_id}/tracks/{stream}.webm"
        target = settings.data_dir / "recordings" / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        rows.append(RecordingTrack(recording_id=recording_id, stream=stream, kind="audio", participant_id=stream,
                                   display_name=name, mime="audio/webm", started_at=started, bytes_received=1,
                                   storage_key=key, size_bytes=target.stat().st_size, duration_ms=duration_ms))
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            session.add(rows[0])
            await session.flush()
            session.add_all(rows[1:])
            await session.commit()
    finally:
        await engine.dispose()
    return SeededRecording(recording_id, meeting_id, room_name)


async def wait_state(api: httpx.AsyncClient, path: str, states: tuple[str, ...] = ("ready", "failed"),
                     timeout: float = 120.0) -> dict[str, Any]:
    """GET ``path`` until its ``state`` is one of ``states`` (AssertionError after ``timeout`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        r = await api.get(path)
        if r.status_code == 200:
            last = r.json()
            if last["state"] in states:
                return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"{path} not in {states} after {timeout}s: {last}")


def lines_of(markdown: str) -> list[tuple[str, str, str]]:
    """``(hh:mm:ss, speaker, words)`` of each utterance line of a transcript."""
    from herewith.transcriptions.transcript import LINE

    out = []
    for line in markdown.splitlines():
        m = LINE.match(line)
        if m:
            out.append((f"{m.group(1)}:{m.group(2)}:{m.group(3)}", m.group(4), m.group(5)))
    return out
