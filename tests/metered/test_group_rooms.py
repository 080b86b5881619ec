"""The media rules in a group room (Janus): ``ownerOnlyBroadcast`` (a non-admin gets no publish token, so
Janus itself refuses its publish, while it receives the admin) and ``audioOnlyRoom`` (a video publish is
refused before Janus sees it; audio is published and offered to the others). aiortc participants speak
Herewith's signaling over a real WebSocket (tests/media/sfu_client.py) to a server running its own Janus.

Run: ``scripts/netns.sh up; ip netns exec herewith-test env HEREWITH_TEST_DATABASES=sqlite
.venv/bin/pytest -m netns tests/metered/test_group_rooms.py``
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiortc import AudioStreamTrack

from herewith.config import Settings
from tests.media.sfu_client import SfuClient
from tests.metered.conftest import SECRET
from tests.metered.helpers import api, create_room, token

pytestmark = [pytest.mark.netns, pytest.mark.timeout(180)]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", secret_key=SECRET, janus="local", janus_ice_enforce_list="v0",
                    janus_rtp_ports="45000-49999")


@pytest.fixture(autouse=True)
def _aiortc_on_the_veth() -> Iterator[None]:
    """aiortc offers host candidates on 127.0.0.2 only (the address Janus uses in the namespace)."""
    import aioice.ice

    original = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.2"]
    yield
    aioice.ice.get_host_addresses = original


async def test_owner_only_broadcast_and_audio_only_in_group_rooms(server, org) -> None:
    async with api(server, org) as vendor:
        await create_room(vendor, roomName="g-owner", roomMode="group", ownerOnlyBroadcast=True)
        await create_room(vendor, roomName="g-audio", roomMode="group", audioOnlyRoom=True)
        admin = await token(vendor, roomName="g-owner", isAdmin=True)
        member = await token(vendor, roomName="g-owner")
    clients: list[SfuClient] = []
    try:
        host = SfuClient(server.ws_url, "/g-owner", display="host", room_key=admin)
        guest = SfuClient(server.ws_url, "/g-owner", display="guest", room_key=member)
        clients += [host, guest]
        await host.join()  # publishes a test pattern
        joined = await guest.join()  # tries to publish too
        assert joined["room"]["media"] == "sfu" and joined["role"] == "member"
        assert joined["grants"] == {"audio": False, "video": False, "screen": False}
        refused = await guest.wait_message("error")
        assert refused["code"] == "sfu_refused" and "433" in refused["message"], refused  # Janus: no token
        await guest.wait_frames_from({host.id}, 5)  # it still receives the admin

        talker = SfuClient(server.ws_url, "/g-audio", display="talker")
        listener = SfuClient(server.ws_url, "/g-audio", display="listener", publish=False)
        clients += [talker, listener]
        await listener.join()
        await talker.join()  # publishes video: refused before Janus
        refused = await talker.wait_message("error")
        assert refused["code"] == "media_not_allowed" and "video" in refused["message"], refused
        start = len(talker.messages)
        await talker.publish(AudioStreamTrack())
        await talker.wait_message("sfu_published", start=start)
        offered = await listener.wait_message("sfu_offer")
        while not any(s["participantId"] == talker.id and s["kind"] == "audio" for s in offered["streams"]):
            offered = await listener.wait_message("sfu_offer", start=listener.messages.index(offered) + 1)
        assert not [s for s in offered["streams"] if s["participantId"] == talker.id and s["kind"] == "video"]
    finally:
        for c in clients:
            await c.close()
