"""Shared fixtures: real servers on 127.0.0.1 over SQLite and PostgreSQL, organizations with API keys.

Databases under test come from ``HEREWITH_TEST_DATABASES`` (comma-separated, default ``sqlite,postgresql``);
the network-namespace run (``-m netns``) sets it to ``sqlite`` since PostgreSQL is outside the namespace.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from herewith.config import Settings
from tests.support.servers import OrgKey, ThreadServer, create_org_key, create_pg_database, drop_pg_database

# aiortc logs one warning per VP8 frame it cannot decode (every frame between a loss and the next keyframe, e.g.
# after a Janus kill -9): thousands of lines that pushed a failing test's assertion out of CI's output.
logging.getLogger("aiortc.rtcrtpreceiver").setLevel(logging.ERROR)

# No SFU unless a test asks for one: group-room tests pass janus="local" and run inside the namespace.
# Servers built from Settings() and `herewith serve` children read this from the environment.
os.environ.setdefault("HEREWITH_JANUS", "off")

DATABASES = [d.strip() for d in os.environ.get("HEREWITH_TEST_DATABASES", "sqlite,postgresql").split(",") if d.strip()]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "netns: needs the test network namespace (WebRTC, Janus, browsers)")


@pytest.fixture(params=DATABASES)
def db_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(db_kind: str) -> Iterator[str | None]:
    """``None`` for SQLite (a file in the data dir) or a fresh PostgreSQL database, dropped afterwards."""
    if db_kind == "sqlite":
        yield None
        return
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, secret_key="test-secret-key-0123456789abcdef",
                    background_tasks=True)


@pytest.fixture
def server(settings: Settings) -> Iterator[ThreadServer]:
    srv = ThreadServer(settings).start()
    yield srv
    srv.stop()


@pytest.fixture
async def org(server: ThreadServer) -> OrgKey:
    return await create_org_key(server.settings, "Org A")


@pytest.fixture
async def other_org(server: ThreadServer) -> OrgKey:
    return await create_org_key(server.settings, "Org B")


@pytest.fixture
async def client(server: ThreadServer, org: OrgKey) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=org.headers, timeout=30) as c:
        yield c
