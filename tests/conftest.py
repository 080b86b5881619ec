"""Shared fixtures: real servers on 127.0.0.1 over SQLite and PostgreSQL, organizations with API keys.

Databases under test come from ``HEREWITH_TEST_DATABASES`` (comma-separated, default ``sqlite,postgresql``);
the network-namespace run (``-m netns``) sets it to ``sqlite`` since PostgreSQL is outside the namespace.

Hung tests fail one at a time (see :func:`pytest_runtest_call`): each async test runs under an
``asyncio.timeout`` that ends shortly before pytest-timeout's limit (``timeout`` in pyproject.toml, or the
test's ``@pytest.mark.timeout``), so a test stuck at an ``await`` is cancelled inside its own event loop and
fails with ``TimeoutError`` while the session goes on; ``@pytest.mark.deadline(seconds)`` sets a shorter one.
pytest-timeout stays the last resort (for code that blocks the loop). ``herewith serve`` children a test
started and did not stop are killed when it ends.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from herewith.config import Settings
from tests.support.servers import (
    OrgKey,
    ThreadServer,
    create_org_key,
    create_pg_database,
    drop_pg_database,
    kill_leftover_servers,
    running_servers,
)

# aiortc logs one warning per VP8 frame it cannot decode (every frame between a loss and the next keyframe, e.g.
# after a Janus kill -9): thousands of lines that pushed a failing test's assertion out of CI's output.
logging.getLogger("aiortc.rtcrtpreceiver").setLevel(logging.ERROR)

# No SFU unless a test asks for one: group-room tests pass janus="local" and run inside the namespace.
# Servers built from Settings() and `herewith serve` children read this from the environment.
os.environ.setdefault("HEREWITH_JANUS", "off")

DATABASES = [d.strip() for d in os.environ.get("HEREWITH_TEST_DATABASES", "sqlite,postgresql").split(",") if d.strip()]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "netns: needs the test network namespace (WebRTC, Janus, browsers)")
    config.addinivalue_line("markers", "deadline(seconds): an async test's own deadline, below pytest-timeout's")


def _pytest_timeout(item: pytest.Item) -> float | None:
    """pytest-timeout's limit for this test, resolved as pytest-timeout does: marker, --timeout,
    PYTEST_TIMEOUT, ini; None or 0 when there is none."""
    marker = item.get_closest_marker("timeout")
    if marker is not None:
        value = marker.kwargs.get("timeout", marker.args[0] if marker.args else None)
    else:
        value = item.config.getoption("timeout", None)
        if value is None:
            value = os.environ.get("PYTEST_TIMEOUT") or item.config.getini("timeout")
    return float(value) if value not in (None, "") else None


def _deadline(item: pytest.Item) -> float | None:
    """Seconds the test's call may take: what is left of pytest-timeout's budget (which also covers setup and
    teardown) minus a margin for teardown, or the ``deadline`` marker if shorter."""
    budget = _pytest_timeout(item)
    left = None
    if budget:
        started = getattr(item, "_herewith_setup_started", time.monotonic())
        margin = max(5.0, min(30.0, budget / 10))
        left = max(1.0, budget - margin - (time.monotonic() - started))
    marker = item.get_closest_marker("deadline")
    if marker is not None:
        own = float(marker.args[0])
        left = own if left is None else min(own, left)
    return left


def _with_deadline(test: Callable, seconds: float, nodeid: str) -> Callable:
    @functools.wraps(test)
    async def run(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                return await test(*args, **kwargs)
        except TimeoutError as exc:
            if deadline.expired():
                raise TimeoutError(f"{nodeid} did not finish within its deadline of {seconds:.0f}s and was cancelled "
                                   "(tests/conftest.py); the traceback above shows where it was waiting") from exc
            raise

    return run


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item._herewith_setup_started = time.monotonic()  # type: ignore[attr-defined]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Run an async test under its deadline; afterwards kill the ``herewith serve`` children it left running."""
    before = running_servers()
    original = getattr(item, "obj", None)
    seconds = _deadline(item) if inspect.iscoroutinefunction(original) else None
    if seconds is not None:
        item.obj = _with_deadline(original, seconds, item.nodeid)  # type: ignore[attr-defined]
    try:
        return (yield)
    finally:
        if seconds is not None:
            item.obj = original  # type: ignore[attr-defined]
        killed = kill_leftover_servers(keep=before)
        if killed:
            warnings.warn(pytest.PytestWarning(f"{item.nodeid} left herewith serve running, killed: {', '.join(killed)}"),
                          stacklevel=1)


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
