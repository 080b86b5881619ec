"""End to end in headless Chromium: waiting room (knock accepted, another rejected), a viewer, a host removing
someone, a fifth sender refused, DELETE ending a call, denied camera permission, and a dropped connection."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.e2e.conftest import CHROME_ARGS, CHROMIUM, create_meeting, join, stats, wait_media, wait_phase, with_params
from tests.signaling.helpers import Client
from tests.support.servers import ThreadServer

pytestmark = pytest.mark.netns


async def test_locked_room_knock_accepted_and_another_rejected(client: httpx.AsyncClient, open_page) -> None:
    meeting = await create_meeting(client, isLocked=True)
    host = await open_page(with_params(meeting["hostRoomUrl"], displayName="Hana Host"), browser=0)
    await join(host)
    await wait_phase(host, "call")
    assert await host.is_visible("#lock-status")

    guest = await open_page(with_params(meeting["roomUrl"], displayName="Gus"), browser=1)
    await join(guest)
    await wait_phase(guest, "lobby")
    assert "locked" in (await guest.inner_text("#knock")).lower()
    await guest.click("#knock-button")
    await wait_phase(guest, "knocking")
    await host.wait_for_selector("#knock-list >> text=Gus")
    admit = host.locator("#knock-list button", has_text="Let in")
    await admit.click()
    await wait_phase(guest, "call")
    assert await guest.evaluate("window.herewith.role") == "granted_visitor"
    await wait_media(guest, "s.totals.framesDecoded > 0")
    await wait_media(host, "s.totals.framesDecoded > 0")
    await host.wait_for_selector("#people >> text=granted visitor")

    other = await open_page(with_params(meeting["roomUrl"], displayName="Otto"), browser=1)
    await join(other)
    await wait_phase(other, "lobby")
    await other.click("#knock-button")
    await host.wait_for_selector("#knock-list >> text=Otto")
    await host.locator("#knock-list button", has_text="Deny").click()
    await wait_phase(other, "ended")
    assert await other.inner_text("#message-title") == "You were not let in"
    assert await host.evaluate("window.herewith.participants().length") == 1


async def test_viewer_receives_everything_and_sends_nothing(client: httpx.AsyncClient, open_page) -> None:
    meeting = await create_meeting(client)
    host = await open_page(with_params(meeting["hostRoomUrl"], displayName="Hana"), browser=0)
    await join(host)
    await wait_phase(host, "call")
    viewer = await open_page(with_params(meeting["viewerRoomUrl"], displayName="Vera"), browser=1)
    assert await viewer.is_hidden("#pre-cam")  # no camera preview for a viewer
    await join(viewer)
    await wait_phase(viewer, "call")
    assert await viewer.evaluate("window.herewith.role") == "viewer"
    s = await wait_media(viewer, "s.totals.framesDecoded > 0 && s.totals.audioPacketsReceived > 0")
    assert s["totals"]["bytesSent"] == 0
    await asyncio.sleep(1)
    s = await stats(viewer)
    assert s["totals"]["bytesSent"] == 0 and s["totals"]["videoBytesSent"] == 0
    h = await stats(host)
    peer = next(iter(h["peers"].values()))
    assert peer["video"]["bytesReceived"] == 0 and peer["audio"]["bytesReceived"] == 0
    assert peer["sent"]["videoBytes"] > 0
    # the host lists the viewer, with no video tile; the viewer has no controls to send
    await host.wait_for_selector("#people >> text=viewer")
    assert await host.locator(".tile").count() == 1
    assert await viewer.is_hidden("#mic") and await viewer.is_hidden("#screen")


async def test_host_removes_a_participant(client: httpx.AsyncClient, open_page) -> None:
    meeting = await create_meeting(client)
    host = await open_page(with_params(meeting["hostRoomUrl"], displayName="Hana"), browser=0)
    await join(host)
    await wait_phase(host, "call")
    guest = await open_page(with_params(meeting["roomUrl"], displayName="Gus"), browser=1)
    await join(guest)
    await wait_phase(guest, "call")
    await host.wait_for_selector("#people >> text=Gus")
    # ask to mute first: the guest's microphone goes off
    await host.locator("#people li", has_text="Gus").locator("button", has_text="Mute").click()
    await guest.wait_for_function("document.getElementById('mic').textContent === 'Unmute'")
    await host.locator("#people li", has_text="Gus").locator("button", has_text="Remove").click()
    await wait_phase(guest, "ended")
    assert await guest.inner_text("#message-title") == "You were removed"
    await host.wait_for_function("window.herewith.participants().length === 0")


async def test_fifth_sender_sees_room_full(server: ThreadServer, client: httpx.AsyncClient, open_page) -> None:
    meeting = await create_meeting(client)
    occupants = [Client(server.ws_url, meeting["roomName"]) for _ in range(4)]
    try:
        for c in occupants:
            await c.__aenter__()
            await c.join(displayName="Occupant")
        fifth = await open_page(with_params(meeting["roomUrl"], displayName="Fifth"), browser=0)
        await join(fifth)
        await wait_phase(fifth, "ended")
        assert await fifth.inner_text("#message-title") == "This room is full"
        assert await fifth.is_visible("#message-retry")
    finally:
        for c in occupants:
            await c.__aexit__(None, None, None)


async def test_delete_ends_the_call_for_everyone_within_a_second(client: httpx.AsyncClient, open_page) -> None:
    meeting = await create_meeting(client)
    pages = []
    for i, name in enumerate(("Ann", "Bob")):
        page = await open_page(with_params(meeting["roomUrl"], displayName=name), browser=i)
        await join(page)
        await wait_phase(page, "call")
        pages.append(page)
    await wait_media(pages[1], "s.totals.framesDecoded > 0")
    t0 = time.monotonic()
    assert (await client.delete(f"/meetings/{meeting['meetingId']}")).status_code == 204
    for page in pages:
        await page.wait_for_function("window.herewith.phase === 'ended'", timeout=1000)
    assert time.monotonic() - t0 < 1.5  # both pages polled within the second
    for page in pages:
        assert await page.inner_text("#message-title") == "The meeting has ended"
        assert "deleted" in await page.inner_text("#message-text")
    # the link now shows the 410 page
    gone = await open_page(meeting["roomUrl"], browser=0)
    assert await gone.inner_text("#status-title") == "This meeting is over"


async def test_denied_camera_joins_without_sending(client: httpx.AsyncClient, open_page, playwright_instance) -> None:
    meeting = await create_meeting(client)
    host = await open_page(with_params(meeting["hostRoomUrl"], displayName="Hana"), browser=0)
    await join(host)
    await wait_phase(host, "call")
    # a browser whose user blocks camera and microphone (no fake UI: the prompt is denied)
    args = [a for a in CHROME_ARGS if a != "--use-fake-ui-for-media-stream"] + ["--deny-permission-prompts"]
    browser = await playwright_instance.chromium.launch(executable_path=CHROMIUM, args=args)
    try:
        page = await (await browser.new_context(bypass_csp=True)).new_page()
        await page.goto(with_params(meeting["roomUrl"], displayName="Shy"))
        await page.wait_for_selector("#media-notice:not([hidden])")
        assert "blocked" in await page.inner_text("#media-notice")
        await join(page)
        await wait_phase(page, "call")
        s = await wait_media(page, "s.totals.framesDecoded > 0")  # sees the host
        assert s["totals"]["videoBytesSent"] == 0
        await host.wait_for_function("window.herewith.participants().some(p => p.displayName === 'Shy' && !p.audio && !p.video)")
    finally:
        await browser.close()


async def test_lost_connection_reconnects_by_itself(client: httpx.AsyncClient, open_page) -> None:
    meeting = await create_meeting(client)
    ann = await open_page(with_params(meeting["roomUrl"], displayName="Ann"), browser=0)
    await join(ann)
    await wait_phase(ann, "call")
    bob = await open_page(with_params(meeting["roomUrl"], displayName="Bob"), browser=1)
    await join(bob)
    await wait_phase(bob, "call")
    await wait_media(ann, "s.totals.framesDecoded > 0")
    first_id = await bob.evaluate("window.herewith.self")
    await bob.evaluate("window.herewith.dropConnection()")
    await bob.wait_for_function(f"window.herewith.phase === 'call' && window.herewith.self !== {first_id!r}", timeout=15000)
    assert await bob.is_hidden("#conn-status")
    # the call is re-established with the new connection, both ways
    await ann.wait_for_function(f"!window.herewith.participants().some(p => p.id === {first_id!r})")
    await wait_media(ann, "s.totals.framesDecoded > 0 && s.totals.connected === 1")
    await wait_media(bob, "s.totals.framesDecoded > 0 && s.totals.connected === 1")
