"""The SDK's transcriptions and summaries against a real server: transcripts stored as live captions store
them, listed over several pages, read, their Markdown fetched through an access link, deleted; a
transcription asked for a recording without audio tracks fails as the API says; a summary made by the
server's extractive backend from a transcript, read and deleted. Summaries and transcription jobs need the
speech extra (``pip install -e '.[speech]'``, which scripts/test installs); without it the API answers 503,
and that is what is checked then."""

from __future__ import annotations

import asyncio
import importlib.util
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from herewith_client import (
    AsyncHerewith,
    ConflictError,
    InternalServerError,
    NotFoundError,
    Summary,
    Transcription,
)

from herewith.transcriptions.transcript import Utterance
from tests.transcriptions.helpers import seed_recording_with_tracks

T0 = datetime(2030, 1, 1, 12, tzinfo=timezone.utc)
SPEECH = importlib.util.find_spec("faster_whisper") is not None
SUMMARIES = all(importlib.util.find_spec(m) is not None for m in ("sumy", "pysbd"))


async def _store_live(server, organization_id: str, room_name: str, started: datetime, utterances) -> str:
    """A LIVE_TRANSCRIPTION stored through the service call live captions use."""
    from herewith.meetings.models import Meeting
    from herewith.transcriptions import service

    meeting = Meeting(id=str(uuid.uuid4()), organization_id=organization_id, room_name=room_name)

    async def go() -> str:
        async with server.services.sessionmaker() as s:
            t = await service.store_live_transcript(s, meeting, str(uuid.uuid4()), started, started + timedelta(minutes=1),
                                                    utterances, "en", started + timedelta(minutes=2), server.settings)
            await s.commit()
            return t.id

    return server.run_coro(go())


async def _settled(get, item_id: str, timeout: float = 60.0):  # noqa: ANN001, ANN202
    """``await get(item_id)`` until its state is no longer in_progress."""
    deadline = time.monotonic() + timeout
    while True:
        item = await get(item_id)
        if item.state != "in_progress" or time.monotonic() > deadline:
            return item
        await asyncio.sleep(0.2)


STANDUP = [Utterance(2, "Ann", "Good morning everyone, this is the weekly planning meeting."),
           Utterance(9, "Bob", "The login page is finished and the payment integration is tested."),
           Utterance(20, "Ann", "We decided to ship the mobile release next Friday."),
           Utterance(31, "Bob", "Action item: Bob writes the release notes by Thursday.")]


async def test_transcriptions_and_summaries(server, org, async_sdk: AsyncHerewith):
    first = await _store_live(server, org.organization_id, "/sdk-standup", T0, STANDUP)
    second = await _store_live(server, org.organization_id, "/sdk-retro", T0 + timedelta(hours=1),
                               [Utterance(1, "Cy", "Short one.")])
    page = await async_sdk.transcriptions.list(limit=1)
    assert [t.transcriptionId for t in page.results] == [second] and page.cursor
    assert [t.transcriptionId async for t in async_sdk.transcriptions.list(limit=1)] == [second, first]  # newest first
    assert [t.transcriptionId async for t in async_sdk.transcriptions.list(room_name="/sdk-standup")] == [first]
    got = await async_sdk.transcriptions.get(first)
    assert isinstance(got, Transcription) and (got.type, got.state, got.language) == ("LIVE_TRANSCRIPTION", "ready", "en")
    assert got.startDate == T0 and got.durationInSeconds == 60.0
    text = await async_sdk.transcriptions.text(first)
    assert "[00:00:02] Ann: Good morning everyone" in text and "[00:00:20] Ann: We decided" in text

    if SUMMARIES:
        created = await async_sdk.summaries.create(transcription_id=first, template="General Bulleted")
        summary = await _settled(async_sdk.summaries.get, created.summaryId)
        assert isinstance(summary, Summary) and summary.state == "completed", summary
        assert summary.transcriptionId == first and summary.template == "General Bulleted"
        assert summary.text and "ship the mobile release" in summary.text
        assert [s.summaryId async for s in async_sdk.summaries.list(limit=1)] == [created.summaryId]
        await async_sdk.summaries.delete(created.summaryId)
        with pytest.raises(NotFoundError):
            await async_sdk.summaries.get(created.summaryId)
    else:
        with pytest.raises(InternalServerError) as unavailable:
            await async_sdk.summaries.create(transcription_id=first)
        assert unavailable.value.status_code == 503

    seeded = await seed_recording_with_tracks(server.settings, org.organization_id, [], room_name="/sdk-silent")
    if SPEECH:
        asked = await async_sdk.transcriptions.create(recording_id=seeded.recording_id)
        failed = await _settled(async_sdk.transcriptions.get, asked.transcriptionId)
        assert failed.state == "failed" and failed.recordingId == seeded.recording_id
        with pytest.raises(ConflictError) as not_ready:
            await async_sdk.transcriptions.access_link(asked.transcriptionId)
        assert not_ready.value.data == {"state": "failed"}
        await async_sdk.transcriptions.delete(asked.transcriptionId)
    else:
        with pytest.raises(InternalServerError) as unavailable:
            await async_sdk.transcriptions.create(recording_id=seeded.recording_id)
        assert unavailable.value.status_code == 503

    await async_sdk.transcriptions.bulk_delete([first, str(uuid.uuid4())])
    await async_sdk.transcriptions.delete(second)
    assert [t async for t in async_sdk.transcriptions.list()] == []
