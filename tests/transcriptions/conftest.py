"""Fixtures of the transcription tests: fast job loops, tiny.en (the quicker model; the end-to-end test and
the benchmark use base), two participants' espeak-ng speech as Opus tracks."""

from __future__ import annotations

from pathlib import Path

import pytest

from herewith.config import Settings
from tests.support.speech import speech_track
from tests.transcriptions.helpers import ALICE, BOB, TRACK_SECONDS
from tests.webhooks import helpers as _webhook_helpers  # noqa: F401 - lets servers deliver to 127.0.0.1 receivers


def fast_settings(tmp_path: Path, database_url: str | None, **extra) -> Settings:  # noqa: ANN003
    values = dict(data_dir=tmp_path / "data", database_url=database_url,
                  secret_key="test-secret-key-0123456789abcdef", background_tasks=True, webhook_poll_seconds=0.1,
                  transcription_poll_seconds=0.2, webhook_allow_private_targets=True, stt_model="tiny.en")
    values.update(extra)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return fast_settings(tmp_path, database_url)


@pytest.fixture(scope="session")
def speech_tracks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Alice's and Bob's own audio tracks (Opus in WebM, 22 s each), their words taking turns."""
    pytest.importorskip("faster_whisper", reason="the speech extra is not installed (pip install -e '.[speech]')")
    base = tmp_path_factory.mktemp("speech")
    return {"Alice": speech_track(ALICE, base / "alice.webm", total_s=TRACK_SECONDS),
            "Bob": speech_track(BOB, base / "bob.webm", total_s=TRACK_SECONDS, voice="en-us+m3", pitch=35)}
