"""Smoke: two aiortc senders and an aiortc viewer in a group room through Herewith's SFU proxy."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from herewith.config import Settings
from tests.media.sfu_client import SfuClient

pytestmark = pytest.mark.netns


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", secret_key="test-secret-key-0123456789abcdef",
                    janus="local", janus_ice_enforce_list="v0", janus_rtp_ports="30000-34999",
                    metrics_enabled=True)


@pytest.fixture(autouse=True)
def _pin_aiortc_to_the_veth():
    """aiortc offers host candidates on 127.0.0.2 only (Janus's libnice does not use 'lo')."""
    import aioice.ice

    original = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.2"]
    yield
    aioice.ice.get_host_addresses = original


async def test_two_senders_and_a_viewer(server, client) -> None:
    r = await client.post("/meetings", json={"endDate": "2099-01-01T00:00:00Z", "roomMode": "group",
                                             "fields": ["hostRoomUrl", "viewerRoomUrl"]})
    assert r.status_code == 201, r.text
    m = r.json()
    room = urlparse(m["roomUrl"]).path
    viewer_key = parse_qs(urlparse(m["viewerRoomUrl"]).query)["roomKey"][0]
    a = SfuClient(server.ws_url, room, display="a")
    b = SfuClient(server.ws_url, room, display="b")
    c3 = SfuClient(server.ws_url, room, display="c")
    v = SfuClient(server.ws_url, room, display="v", room_key=viewer_key, publish=False)
    for c in (a, b, v):
        await c.join()
    assert a.joined["room"]["media"] == "sfu"
    await a.wait_frames_from({b.id}, 5)
    await b.wait_frames_from({a.id}, 5)
    await v.wait_frames_from({a.id, b.id}, 5)
    await c3.join()  # a renegotiation (update) for everyone already there
    await a.wait_frames_from({b.id, c3.id}, 5)
    await c3.wait_frames_from({a.id, b.id}, 5)
    await v.wait_frames_from({a.id, b.id, c3.id}, 5)
    # /metrics: the local Janus is up with this room on it; the group room's people by role
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(server.base_url + "/metrics", timeout=10).text
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for f in text_string_to_metric_families(text) for s in f.samples}
    janus = [labels for name, labels in got if name == "herewith_janus_up"]
    assert len(janus) == 1 and got[("herewith_janus_up", janus[0])] == 1, janus
    assert got[("herewith_janus_rooms", janus[0])] >= 1
    assert got[("herewith_participants_live", (("mode", "group"), ("role", "visitor")))] == 3
    assert got[("herewith_participants_live", (("mode", "group"), ("role", "viewer")))] == 1
    await v.publish()
    err = await v.wait_message("error")
    assert err["code"] == "sfu_refused" and "433" in err["message"], err
    for c in (a, b, c3, v):
        await c.close()
