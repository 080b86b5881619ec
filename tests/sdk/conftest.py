"""Fixtures of the SDK tests: the real server of tests/conftest.py with fast webhook delivery to receivers on
127.0.0.1, and SDK clients (``herewith_client``, installed from ``sdk/python``) holding an organization's key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from herewith_client import AsyncHerewith, Herewith

from herewith.config import Settings
from tests.support.servers import OrgKey, ThreadServer
from tests.webhooks import helpers as _webhook_helpers  # noqa: F401 - lets servers deliver to 127.0.0.1 receivers


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, secret_key="test-secret-key-0123456789abcdef",
                    background_tasks=True, webhook_poll_seconds=0.1, webhook_allow_private_targets=True,
                    transcription_poll_seconds=0.2, stt_model="tiny.en")


@pytest.fixture
def sdk(server: ThreadServer, org: OrgKey) -> Iterator[Herewith]:
    with Herewith(base_url=server.base_url, api_key=org.api_key, timeout=30) as client:
        yield client


@pytest.fixture
async def async_sdk(server: ThreadServer, org: OrgKey) -> AsyncIterator[AsyncHerewith]:
    async with AsyncHerewith(base_url=server.base_url, api_key=org.api_key, timeout=30) as client:
        yield client
