"""The room page in a room made by the second vendor's API (docs/metered.md): a private, audio-only room
with ``autoJoin``, opened by two headless Chromium browsers with ``?token=`` links. The page joins by itself,
sends no video (the server would refuse it), hears the other side, and hides what the room turns off
(camera and screen buttons, chat)."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import wait_media, wait_phase
from tests.metered.helpers import api, create_room, token

pytestmark = pytest.mark.netns


async def test_audio_only_private_room_with_auto_join(server, org, open_page) -> None:
    async with api(server, org) as vendor:
        await create_room(vendor, roomName="page-audio", privacy="private", audioOnlyRoom=True, autoJoin=True)
        links = [f"{server.base_url}/page-audio?token=" + await token(vendor, roomName="page-audio", name=name,
                                                                          isAdmin=name == "Ann")
                 for name in ("Ann", "Bob")]
    async with httpx.AsyncClient() as web:
        assert (await web.get(f"{server.base_url}/page-audio")).status_code == 403  # no token: a clear page
    pages = [await open_page(link, browser=i) for i, link in enumerate(links)]
    for page in pages:
        await wait_phase(page, "call", timeout=30_000)  # autoJoin: nobody clicked Join
    for page in pages:
        s = await wait_media(page, "s.totals.audioPacketsReceived > 0 && s.totals.audioBytesSent > 0")
        assert s["totals"]["videoBytesSent"] == 0 and s["totals"]["framesDecoded"] == 0, s
        assert await page.evaluate("document.getElementById('pre-cam').disabled")  # no camera was asked for
        assert await page.evaluate("document.getElementById('cam').hidden && document.getElementById('screen').hidden")
        assert await page.evaluate("document.getElementById('chat-form').hidden")  # enableChat defaults to false
        assert not [n for n in await page.evaluate("window.herewith.notices()") if n["kind"] == "error"]
    assert await pages[0].evaluate("window.herewith.role") == "host"
    assert await pages[1].evaluate("window.herewith.role") == "member"
