"""Fixtures of the summaries tests: fast job loops; transcripts from tests/fixtures/transcripts (written for
these tests: a team meeting, a clinical consultation, a physics lecture)."""

from __future__ import annotations

from pathlib import Path

import pytest

from herewith.config import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    pytest.importorskip("sumy", reason="the speech extra is not installed (pip install -e '.[speech]')")
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    secret_key="test-secret-key-0123456789abcdef", background_tasks=True,
                    transcription_poll_seconds=0.2)
