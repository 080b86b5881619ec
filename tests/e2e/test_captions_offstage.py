"""Captions of a speaker without a tile on the page shown: in headless Chromium (test network namespace).

A host's room page in a meeting with live transcription. The captioner is a WebSocket client holding a
``captioner`` room key (the real captioner process is proven in tests/e2e/test_live_captions.py), and a guest is a
plain WebSocket participant. The host's own caption goes under the host's tile; the guest's final caption, decoded
after the guest left (no tile any more), shows at the bottom of the stage with the guest's name, and goes away when
its hold time is over, like a tile's caption.

Run: ``scripts/netns.sh up; ip netns exec herewith-test env HEREWITH_TEST_DATABASES=sqlite
.venv/bin/pytest -m netns tests/e2e/test_captions_offstage.py``
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from herewith.auth.room_keys import issue_room_key
from herewith.config import Settings
from tests.e2e.conftest import create_meeting, join, wait_phase, with_params
from tests.signaling.helpers import Client

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]

MANUAL = {"destination": None, "startTrigger": "manual", "language": "en", "liveCaptions": True}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"live_captions_per_node": 0})


async def test_a_speaker_without_a_tile_is_captioned_below_the_stage(server: Any, client: httpx.AsyncClient,
                                                                     open_page: Any) -> None:
    m = await create_meeting(client, liveTranscription=MANUAL)
    page = await open_page(with_params(m["hostRoomUrl"], displayName="Hannah", video="off", audio="off"))
    await join(page)
    await wait_phase(page, "call")
    host_id = await page.evaluate("window.herewith.self")
    end = datetime.fromisoformat(m["endDate"].replace("Z", "+00:00"))
    key = issue_room_key(server.settings.signing_key, m["roomName"], "captioner", end)
    async with Client(server.ws_url, m["roomName"]) as guest, Client(server.ws_url, m["roomName"]) as captioner:
        await guest.join(displayName="Gustav", audio=False, video=False)
        guest_id = guest.id
        await captioner.join(roomKey=key, audio=False, video=False)

        # the host has a tile: the caption goes under it, not below the stage
        await captioner.send({"type": "caption", "participantId": host_id, "text": "Welcome, Gustav.",
                              "final": True, "utteranceId": f"{host_id}.1"})
        await page.wait_for_function(
            f"document.querySelector('.tile[data-key=\"{host_id}:camera\"] .caption')?.textContent === 'Welcome, Gustav.'")
        assert await page.evaluate("document.getElementById('captions-offstage').children.length") == 0

        # the guest leaves; what they said last is decoded after: no tile, so a line of its own with their name
        await guest.send({"type": "leave"})
        await page.wait_for_function(f"!document.querySelector('.tile[data-key=\"{guest_id}:camera\"]')")
        await captioner.send({"type": "caption", "participantId": guest_id, "text": "Thanks, see you tomorrow.",
                              "final": True, "utteranceId": f"{guest_id}.1"})
        await page.wait_for_function(
            "document.getElementById('captions-offstage').textContent === 'Gustav: Thanks, see you tomorrow.'")
        line = await page.evaluate(
            "(() => { const el = document.querySelector('#captions-offstage .caption-line');"
            " const r = el.getBoundingClientRect();"
            " return {final: el.dataset.final, participant: el.dataset.participant, visible: r.width > 0 && r.height > 0}; })()")
        assert line == {"final": "true", "participant": guest_id, "visible": True}, line
        # ... and goes when its hold time is over, as a tile's caption does
        await page.wait_for_function("document.getElementById('captions-offstage').children.length === 0",
                                     timeout=20_000)
