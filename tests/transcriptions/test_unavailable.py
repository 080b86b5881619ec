"""Without a usable speech model (or without the speech extra) ``POST /v1/transcriptions`` answers a clear 503
in the contract's error body and queues nothing; summaries without their backend likewise."""

from __future__ import annotations

from pathlib import Path

import pytest

from herewith.config import Settings
from tests.transcriptions.conftest import fast_settings
from tests.transcriptions.helpers import seed_recording_with_tracks


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return fast_settings(tmp_path, database_url, stt_model=str(tmp_path / "no-such-model"), summary_backend="openai")


async def test_post_is_a_clear_503_and_queues_nothing(server, client, org):
    seeded = await seed_recording_with_tracks(server.settings, org.organization_id, [])
    r = await client.post("/transcriptions", json={"recordingId": seeded.recording_id})
    assert r.status_code == 503
    body = r.json()
    assert body["error"] == "Speech-to-text is not available on this server"
    reason = body["data"]["reason"]
    assert "neither a known model" in reason or "not installed" in reason, reason
    assert (await client.get("/transcriptions")).json() == {"results": [], "cursor": None}
    r = await client.post("/summaries", json={"transcriptionId": "x", "template": "SOAP"})
    assert r.status_code == 503 and "summary_openai_url" in r.json()["data"]["reason"]
