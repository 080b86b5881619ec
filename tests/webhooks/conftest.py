from __future__ import annotations

from pathlib import Path

import pytest

from herewith.config import Settings


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    """Fast loops so tests move the clock instead of sleeping. Receivers listen on 127.0.0.1, so loopback
    targets are allowed explicitly (the default refuses them; tests/webhooks/test_targets.py checks that)."""
    return Settings(data_dir=tmp_path / "data", database_url=database_url, secret_key="test-secret-key-0123456789abcdef",
                    background_tasks=True, sweeper_interval_seconds=0.1, webhook_poll_seconds=0.1,
                    session_grace_seconds=60, webhook_allow_private_targets=True)
