"""Fixtures for the Janus tests: a real Janus run by JanusSupervisor, aiortc pinned to the namespace.

Tests marked ``netns`` run Janus and aiortc; run them inside the test network namespace
(``scripts/netns.sh up``; ``ip netns exec herewith-test .venv/bin/pytest -m netns tests/media``).
Outside it (no ``v0`` interface) or without the ``janus`` binary they are skipped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from herewith.media.janus import VIDEOROOM, JanusClient, JanusSession, VideoRoomAdmin
from herewith.media.supervisor import JanusSupervisor

NETNS_IFACE = "v0"  # scripts/netns.sh: veth carrying 127.0.0.2 (libnice refuses 'lo')
ICE_ADDR = os.environ.get("HEREWITH_ICE_ADDR", "127.0.0.2")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "netns: runs Janus/WebRTC; needs the herewith-test network namespace")


def _netns_skip_reason() -> str | None:
    if not Path(f"/sys/class/net/{NETNS_IFACE}").exists():
        return "not inside the test network namespace (ip netns exec herewith-test ...)"
    if shutil.which("janus") is None:
        return "janus binary not installed"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _netns_skip_reason()
    if reason is None:
        return
    for item in items:
        if "netns" in item.keywords and str(item.path).startswith(str(Path(__file__).parent)):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def pinned_ice() -> Iterator[str]:
    """Make aiortc offer host candidates on ICE_ADDR only (aioice skips loopback otherwise)."""
    import aioice.ice

    original = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: [ICE_ADDR]
    yield ICE_ADDR
    aioice.ice.get_host_addresses = original


@pytest.fixture(scope="module", params=["websocket", "http"])
async def janus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[JanusSupervisor]:
    """A real Janus for the module, configured by JanusSupervisor for the test namespace; every test using it
    runs once per API transport (``janus.url`` and ``janus.client()`` speak WebSocket, then HTTP)."""
    sup = JanusSupervisor(tmp_path_factory.mktemp("janus"), ice_enforce_list=NETNS_IFACE, rtp_ports=(30000, 34999),
                          transport=request.param)
    await sup.start()
    yield sup
    await sup.stop()


@pytest.fixture
async def client(janus: JanusSupervisor) -> AsyncIterator[JanusClient]:
    async with janus.client() as c:
        yield c


@pytest.fixture
async def session(client: JanusClient) -> AsyncIterator[JanusSession]:
    s = await client.create_session()
    yield s
    await s.destroy()


@pytest.fixture
async def rooms(session: JanusSession, janus: JanusSupervisor) -> VideoRoomAdmin:
    return VideoRoomAdmin(await session.attach(VIDEOROOM), admin_key=janus.admin_key)
