"""Embedding in real Chromium: a page on another origin (a second port on 127.0.0.1) embeds a room with
``<herewith-embed>`` from the server's ``/embed.js``; its ``ready``, ``join`` and ``participant_join`` events
arrive, ``toggleCamera(false)`` turns the camera off as the other participant sees, ``chat="off"`` and
``minimal`` change what the embedded page shows, ``leave()`` leaves; and ``HEREWITH_FRAME_ANCESTORS`` refuses a
page whose origin it does not list while it lets a listed one embed (a locked room there: ``knock()`` knocks).

The embedding pages get browser contexts without ``bypass_csp``: frame-ancestors is enforced as in the field."""

from __future__ import annotations

import asyncio
import html
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page
from playwright.async_api import Error as PlaywrightError

from herewith.config import Settings
from tests.e2e.conftest import create_meeting, join, wait_phase, with_params
from tests.support.servers import ThreadServer, create_org_key

pytestmark = pytest.mark.netns

EVENTS = ["ready", "join", "leave", "meeting_end", "participant_join", "participant_leave", "knock",
          "microphone_toggle", "camera_toggle", "screenshare_toggle", "chat_toggle", "people_toggle",
          "recording_status_change", "connection_status_change"]


class EmbeddingSite:
    """A plain web site on 127.0.0.1 (its own port, so its own origin) whose page ``/`` embeds one room with
    ``<herewith-embed>``, the script loaded from the Herewith server, and records the element's events in
    ``window.events``."""

    def __init__(self) -> None:
        self.page_html = b""
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = site.page_html
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def embed(self, herewith: str, room_url: str, **attributes: str) -> str:
        attrs = " ".join(f'{name}="{html.escape(value)}"' if value else name for name, value in attributes.items())
        self.page_html = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Our product</title>
<script>
  window.events = [];
  window.addEventListener('DOMContentLoaded', () => {{
    const el = document.getElementById('room');
    for (const name of {EVENTS!r}) el.addEventListener(name, e => window.events.push({{type: name, detail: e.detail}}));
  }});
</script>
<script type="module" src="{herewith}/embed.js"></script>
</head><body><h1>Our product</h1>
<herewith-embed id="room" room="{html.escape(room_url)}" {attrs} style="height: 640px"></herewith-embed>
</body></html>""".encode()
        return self.origin + "/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def site() -> Iterator[EmbeddingSite]:
    s = EmbeddingSite()
    yield s
    s.close()


async def embedding_page(browser: Browser, url: str, contexts: list) -> Page:
    ctx = await browser.new_context(viewport={"width": 1280, "height": 800})  # CSP enforced
    contexts.append(ctx)
    page = await ctx.new_page()
    page.on("pageerror", lambda exc: print(f"[embedding page] error: {exc}"))
    await page.goto(url)
    return page


async def wait_event(page: Page, expr: str, timeout: float = 20_000) -> Any:
    """Wait until an event in ``window.events`` matches ``expr`` (JS over ``e``) and return it."""
    handle = await page.wait_for_function(f"window.events.find(e => {expr})", timeout=timeout)
    return await handle.json_value()


async def frame_wait(frame: Any, expr: str, timeout: float = 20.0) -> None:
    """Poll ``expr`` in the room's frame until true (Playwright's wait_for_function polls through eval, which
    the room page's CSP forbids; evaluate does not)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    check = f"(() => {{ try {{ return Boolean({expr}); }} catch {{ return false; }} }})()"  # before app.js ran
    while True:
        try:
            if await frame.evaluate(check):
                return
        except PlaywrightError:  # the frame is between documents
            pass
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {expr} in the room frame")
        await asyncio.sleep(0.1)


def room_frame(page: Page) -> Any:
    frames = [f for f in page.frames if f is not page.main_frame]
    assert len(frames) == 1, [f.url for f in page.frames]
    return frames[0]


async def test_embedded_room_events_commands_and_options(client: httpx.AsyncClient, server: ThreadServer,
                                                         open_page, browsers: list[Browser], site: EmbeddingSite) -> None:
    meeting = await create_meeting(client)
    contexts: list = []
    try:
        url = site.embed(server.base_url, meeting["roomUrl"], displayName="Ann Embedded", precallReview="off",
                         chat="off")
        ann = await embedding_page(browsers[0], url, contexts)
        await wait_event(ann, "e.type === 'ready'")
        joined = await wait_event(ann, "e.type === 'join'")
        assert joined["detail"]["role"] == "visitor"
        frame = room_frame(ann)
        assert frame.url.startswith(server.base_url) and "embedOrigin=" in frame.url
        await frame_wait(frame, "window.herewith.phase === 'call'")

        # chat="off": no chat in the embedded room; the people list and the other buttons are there
        assert not await frame.is_visible("#chat-form")
        assert await frame.is_visible("#people")
        for button in ("#mic", "#cam", "#screen", "#leave"):
            assert await frame.is_visible(button), button

        # Bob joins from his own browser: the embedding page hears participant_join
        bob = await open_page(with_params(meeting["roomUrl"], displayName="Bob"), browser=1)
        await join(bob)
        await wait_phase(bob, "call")
        got = await wait_event(ann, "e.type === 'participant_join'")
        assert got["detail"]["participant"]["displayName"] == "Bob"
        await bob.wait_for_function("window.herewith.participants().some(p => p.displayName === 'Ann Embedded' && p.video === true)")

        # toggleCamera(false) on the element: Bob sees Ann's camera go off; the page hears camera_toggle
        await ann.evaluate("document.getElementById('room').toggleCamera(false)")
        await wait_event(ann, "e.type === 'camera_toggle' && e.detail.enabled === false")
        await bob.wait_for_function("window.herewith.participants().some(p => p.displayName === 'Ann Embedded' && p.video === false)")
        await bob.wait_for_selector(".tile.camera[data-video='false'] .avatar:not([hidden])")
        await ann.evaluate("document.getElementById('room').toggleMicrophone(false)")
        await bob.wait_for_function("window.herewith.participants().some(p => p.displayName === 'Ann Embedded' && p.audio === false)")
        await ann.evaluate("document.getElementById('room').togglePeople(false)")
        await wait_event(ann, "e.type === 'people_toggle' && e.detail.open === false")
        await frame.wait_for_selector("#people", state="hidden")

        # minimal: the room reloads with only the camera and microphone buttons
        await ann.evaluate("document.getElementById('room').setAttribute('minimal', '')")
        await ann.wait_for_function("window.events.filter(e => e.type === 'join').length === 2")
        frame = room_frame(ann)
        assert "minimal=" in frame.url
        await frame_wait(frame, "window.herewith.phase === 'call'")
        assert await frame.is_visible("#mic") and await frame.is_visible("#cam")
        for hidden in ("#screen", "#leave", "#people", "#chat-form"):
            assert not await frame.is_visible(hidden), hidden

        # leave(): the embedded participant leaves; Bob sees Ann go
        await bob.wait_for_function("window.herewith.participants().filter(p => p.displayName === 'Ann Embedded').length === 1")
        await ann.evaluate("document.getElementById('room').leave()")
        await wait_event(ann, "e.type === 'leave'")
        await bob.wait_for_function("window.herewith.participants().every(p => p.displayName !== 'Ann Embedded')")
        # the element took events only from its own frame's window and the room's origin: a forged one is ignored
        await ann.evaluate("window.postMessage({source: 'herewith', type: 'event', event: 'join', detail: {}}, '*')")
        await ann.evaluate("new Promise(r => setTimeout(r, 200))")
        assert await ann.evaluate("window.events.filter(e => e.type === 'join').length") == 2
    finally:
        for ctx in contexts:
            await ctx.close()


async def test_frame_ancestors_refuses_an_unlisted_origin(tmp_path: Path, browsers: list[Browser]) -> None:
    listed, unlisted = EmbeddingSite(), EmbeddingSite()
    settings = Settings(data_dir=tmp_path / "data", secret_key="test-secret-key-0123456789abcdef",
                        frame_ancestors=[listed.origin])
    srv = ThreadServer(settings).start()
    contexts: list = []
    try:
        org = await create_org_key(settings)
        async with httpx.AsyncClient(base_url=srv.base_url + "/v1", headers=org.headers, timeout=30) as api:
            meeting = await create_meeting(api)
        r = httpx.get(srv.base_url + meeting["roomName"])
        assert f"frame-ancestors {listed.origin}" in r.headers["content-security-policy"]

        # the listed origin embeds a locked room: the knock() command knocks and the page hears `knock`
        async with httpx.AsyncClient(base_url=srv.base_url + "/v1", headers=org.headers, timeout=30) as api:
            locked = await create_meeting(api, isLocked=True)
        ok = await embedding_page(browsers[0], listed.embed(srv.base_url, locked["roomUrl"], precallReview="off"),
                                  contexts)
        await wait_event(ok, "e.type === 'ready'")
        await frame_wait(room_frame(ok), "window.herewith.phase === 'lobby'")
        await ok.evaluate("document.getElementById('room').knock()")
        await wait_event(ok, "e.type === 'knock'")
        await frame_wait(room_frame(ok), "window.herewith.phase === 'knocking'")

        refused = await browsers[1].new_context(viewport={"width": 1280, "height": 800})
        contexts.append(refused)
        page = await refused.new_page()
        async with page.expect_console_message(lambda m: "frame-ancestors" in m.text, timeout=20_000) as message:
            await page.goto(unlisted.embed(srv.base_url, meeting["roomUrl"]))
        text = (await message.value).text
        assert "blocked" in text and f"frame-ancestors {listed.origin}" in text, text
        frame = room_frame(page)
        assert not frame.url.startswith(srv.base_url + meeting["roomName"])  # Chromium's error page, not the room
        assert await page.evaluate("window.events.length") == 0
    finally:
        for ctx in contexts:
            await ctx.close()
        srv.stop()
        listed.close()
        unlisted.close()
