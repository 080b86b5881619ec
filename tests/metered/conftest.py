"""Fixtures of the second vendor's room API tests: a server per test on SQLite and PostgreSQL for the API
(``server``, ``org`` from tests/conftest.py, with loopback webhook receivers allowed), and one SQLite server
per module for the room rules (``rules_server``: the live room's rules do not depend on the database; one
server for the module keeps CI time down)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from herewith.config import Settings
from tests.support.servers import OrgKey, ThreadServer, create_org_key, run_sync

SECRET = "test-secret-key-0123456789abcdef"


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, secret_key=SECRET,
                    background_tasks=True, webhook_poll_seconds=0.1, sweeper_interval_seconds=0.2,
                    session_grace_seconds=1, webhook_allow_private_targets=True)


@pytest.fixture(scope="module")
def rules_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("metered") / "data", secret_key=SECRET,
                        background_tasks=True, room_empty_grace_seconds=0)
    srv = ThreadServer(settings).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def rules_org(rules_server: ThreadServer) -> OrgKey:
    return run_sync(create_org_key(rules_server.settings, "Metered org"))
