"""End to end, as a new user would: create a meeting through the API, open its roomUrl in two headless Chromium
browsers with a fake camera and microphone, and check from WebRTC statistics that both see and hear each other,
that chat arrives and that a screen share arrives (issue 3, "Done when")."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import create_meeting, join, stats, wait_media, wait_phase, with_params

pytestmark = pytest.mark.netns

DOCS = Path(__file__).resolve().parents[2] / "docs"


async def test_two_browsers_see_and_hear_each_other_chat_and_share_screen(client: httpx.AsyncClient, open_page) -> None:
    meeting = await create_meeting(client)
    ann = await open_page(with_params(meeting["hostRoomUrl"], displayName="Ann Host"), browser=0)
    await join(ann)
    await wait_phase(ann, "call")
    bob = await open_page(with_params(meeting["roomUrl"], displayName="Bob"), browser=1)
    # the pre-call screen prefills the name from ?displayName
    assert await bob.input_value("#display-name") == "Bob"
    await join(bob)
    await wait_phase(bob, "call")

    # both decode the other's video and receive audio
    for page in (ann, bob):
        s = await wait_media(page, "s.totals.framesDecoded > 0 && s.totals.audioPacketsReceived > 0 && s.totals.audioBytesReceived > 0")
        assert s["totals"]["connected"] == 1, s
        assert s["totals"]["videoBytesSent"] > 0 and s["totals"]["audioBytesSent"] > 0
    assert await ann.evaluate("window.herewith.role") == "host"
    assert await bob.evaluate("window.herewith.role") == "visitor"
    # the grid shows the other participant's name; the participant list shows roles
    await ann.wait_for_selector(".tile[data-participant] .label >> text=Bob")
    people = await bob.inner_text("#people")
    assert "Ann Host" in people and "host" in people and "visitor" in people

    # chat both ways, through the form
    await bob.fill("#chat-input", "hello from Bob")
    await bob.click("#chat-form button")
    await ann.wait_for_function("window.herewith.chat().some(m => m.text === 'hello from Bob')")
    await ann.wait_for_selector("#chat-log >> text=hello from Bob")
    await ann.evaluate("window.herewith.sendChat('hi Bob')")
    await bob.wait_for_function("window.herewith.chat().some(m => m.text === 'hi Bob' && m.displayName === 'Ann Host')")

    # mute: Bob mutes his microphone; Ann sees the indicator
    await bob.click("#mic")
    await ann.wait_for_function("window.herewith.participants().some(p => p.displayName === 'Bob' && p.audio === false)")
    await ann.wait_for_selector(".tile.camera[data-audio='false'] .muted-icon")

    # screen share: Bob shares (getDisplayMedia picks the virtual screen); Ann decodes a second video track
    await bob.click("#screen")
    await bob.wait_for_function("document.getElementById('screen').textContent === 'Stop sharing'")
    s = await wait_media(ann, "s.totals.screenFramesDecoded > 0")
    assert s["totals"]["framesDecoded"] > 0
    await ann.wait_for_selector(".tile.screen")
    assert await bob.evaluate("(async () => (await window.herewith.getStats()).totals.screenBytesSent)()") > 0

    # the screenshot for the README (two participants, a screen share, chat): taken on every run, written
    # into docs/ only when asked (HEREWITH_UPDATE_SCREENSHOT=1), so a test run leaves the work tree clean
    await ann.wait_for_timeout(500)
    shot = await ann.screenshot(path=str(DOCS / "screenshot-room.png") if os.environ.get("HEREWITH_UPDATE_SCREENSHOT") else None)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"

    # stopping the share removes the tile on the other side
    await bob.click("#screen")
    await ann.wait_for_function("!document.querySelector('.tile.screen')")

    # leave: the other side sees the participant go
    await bob.click("#leave")
    await wait_phase(bob, "ended")
    await ann.wait_for_function("window.herewith.participants().length === 0")
    assert (await stats(ann))["peers"] == {}
