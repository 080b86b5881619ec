"""Room theming in a real headless Chromium (CONTRACT.md "Room theming"; issue 6).

After a primary colour and a logo are set through the API, the room page's computed styles use that
colour and the logo image has loaded; the knock page (the waiting-room screen of a locked room) shows its
own background. Pages are loaded over HTTP from 127.0.0.1 only; no WebRTC is involved.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image
from playwright.async_api import async_playwright

from tests.rooms.theme_helpers import png

CHROME_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run",
               "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
FUTURE = "2099-02-18T14:23:00.000Z"
PRIMARY = "#ff0066"
KNOCK_GREEN = (0, 200, 80)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def db_kind() -> str:  # one database is enough here: the page is what is under test
    return "sqlite"


async def _browser(pw):  # noqa: ANN001, ANN202
    return await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROME_ARGS)


async def test_room_page_uses_primary_colour_and_logo(client, server):
    meeting = (await client.post("/meetings", json={"endDate": FUTURE})).json()
    room = meeting["roomName"].lstrip("/")
    r = await client.put(f"/rooms/{room}/theme/tokens",
                         json={"tokens": {"colors": {"primary": PRIMARY.upper()}}, "tokensPreset": "custom"})
    assert r.status_code == 204, r.text
    logo = png((420, 120), (20, 40, 220))
    r = await client.put(f"/rooms/{room}/theme/logo", files={"image": ("logo.png", logo, "image/png")})
    assert r.status_code == 204, r.text

    async with async_playwright() as pw:
        browser = await _browser(pw)
        try:
            page = await browser.new_page()
            resp = await page.goto(meeting["roomUrl"])
            assert resp is not None and resp.status == 200
            await page.wait_for_function(
                "() => { const i = document.getElementById('herewith-logo'); return i && i.complete; }",
                timeout=15000)
            logo_state = await page.evaluate(
                "() => { const i = document.getElementById('herewith-logo');"
                " return {w: i.naturalWidth, h: i.naturalHeight, src: i.currentSrc}; }")
            assert logo_state["w"] == 420 and logo_state["h"] == 120, logo_state
            assert f"/themes/rooms/{room}/logo?v=" in logo_state["src"]
            assert await page.evaluate("document.querySelectorAll('img.herewith-logo').length") == 1
            assert await page.evaluate("document.querySelectorAll('style#herewith-theme').length") == 1
            styles = await page.evaluate(
                "() => ({button: getComputedStyle(document.querySelector('button.primary')).backgroundColor,"
                " primary: getComputedStyle(document.documentElement).getPropertyValue('--primary').trim()})")
            assert styles["button"] == "rgb(255, 0, 102)", styles
            assert styles["primary"] == PRIMARY, styles
        finally:
            await browser.close()


async def test_knock_page_shows_its_background(client, server):
    meeting = (await client.post("/meetings", json={"endDate": FUTURE, "isLocked": True})).json()
    room = meeting["roomName"].lstrip("/")
    green = png((1400, 800), KNOCK_GREEN)
    r = await client.put(f"/rooms/{room}/theme/room-knock-page-background",
                         files={"image": ("knock.png", green, "image/png")})
    assert r.status_code == 204, r.text
    r = await client.put(f"/rooms/{room}/theme/room-background", json={"palette": "burgund", "theme": "rocks"})
    assert r.status_code == 204, r.text

    async with async_playwright() as pw:
        browser = await _browser(pw)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            await page.goto(meeting["roomUrl"] + "?displayName=Visitor")
            await _reach_knock_screen(page)
            bg = await page.evaluate("() => getComputedStyle(document.documentElement).backgroundImage")
            assert f"/themes/rooms/{room}/room-knock-page-background?v=" in bg, bg
            # the picture is really painted: a corner of the viewport, outside the card, is the upload's green
            await page.wait_for_function(
                "async () => { const u = getComputedStyle(document.documentElement).backgroundImage.slice(5, -2);"
                " const i = new Image(); i.src = u; await i.decode(); return i.naturalWidth === 1400; }",
                timeout=15000)
            shot = Image.open(io.BytesIO(await page.screenshot())).convert("RGB")
            for xy in ((8, shot.height - 8), (shot.width - 8, 8), (shot.width - 8, shot.height - 8)):
                pixel = shot.getpixel(xy)
                assert all(abs(a - b) <= 6 for a, b in zip(pixel, KNOCK_GREEN)), (xy, pixel)
        finally:
            await browser.close()


async def _reach_knock_screen(page) -> None:  # noqa: ANN001
    """Go from the pre-call screen of a locked room to its knock screen the way a visitor does."""
    await page.wait_for_selector("#precall:not([hidden]), #knock:not([hidden])", timeout=20000)
    if await page.is_visible("#precall"):
        await page.click("#join")
    await page.wait_for_selector("#knock:not([hidden])", timeout=20000)
