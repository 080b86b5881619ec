"""The room page and the API docs in headless Chromium under their Content-Security-Policy
(herewith.kit.security_headers): nothing is blocked, a crafted link's metadata cannot break the page, and the
docs load nothing from another host. Runs in the test network namespace (``-m netns``), like tests/e2e.

Waits poll with ``page.evaluate`` (run by the DevTools protocol, which the page's policy does not govern),
not ``page.wait_for_function``: Playwright evaluates a string predicate with ``eval`` inside the page, which
``script-src 'self'`` forbids, as it should.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.e2e.conftest import CHROME_ARGS, CHROMIUM, create_meeting, with_params
from tests.rooms.theme_helpers import png
from tests.support.servers import ThreadServer

pytestmark = pytest.mark.netns

# Recorded from the first script on: every Content-Security-Policy violation of the page.
WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        yield b
        await b.close()


async def watched_page(browser: Browser) -> tuple[Page, dict[str, list[Any]]]:
    ctx = await browser.new_context(viewport={"width": 1280, "height": 800})
    await ctx.add_init_script(WATCH_CSP)
    page = await ctx.new_page()
    seen: dict[str, list[Any]] = {"console": [], "errors": [], "requests": []}
    page.on("console", lambda m: seen["console"].append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    page.on("request", lambda req: seen["requests"].append(req.url))
    return page, seen


async def until(page: Page, expr: str, timeout: float = 20.0) -> None:
    """Poll the JavaScript expression ``expr`` until it is truthy (``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not await page.evaluate(expr):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expr}")
        await asyncio.sleep(0.05)


def assert_nothing_blocked(violations: list[str], seen: dict[str, list[Any]]) -> None:
    assert violations == [], violations
    assert not [c for c in seen["console"] if "Content Security Policy" in c or "Refused to" in c], seen["console"]
    assert seen["errors"] == [], seen["errors"]


async def test_room_page_runs_under_its_policy(server: ThreadServer, client: httpx.AsyncClient,
                                               browser: Browser) -> None:
    meeting = await create_meeting(client)
    room = meeting["roomName"].lstrip("/")
    # a themed room: the inline colour <style>, an uploaded logo and a background image all load
    r = await client.put(f"/rooms/{room}/theme/tokens", json={"tokens": {"colors": {"primary": "#ff0066"}},
                                                               "tokensPreset": "custom"})
    assert r.status_code == 204
    r = await client.put(f"/rooms/{room}/theme/logo", files={"image": ("logo.png", png((300, 80)), "image/png")})
    assert r.status_code == 204
    page, seen = await watched_page(browser)
    metadata = "<!--<script>"  # left raw in the page's JSON it made the parser swallow the app.js tag
    resp = await page.goto(with_params(meeting["hostRoomUrl"], displayName="Ann", metadata=metadata))
    assert resp is not None and "script-src 'self'" in resp.headers["content-security-policy"]
    await until(page, "window.herewith && window.herewith.phase === 'precall' && !document.getElementById('join').disabled")
    await page.click("#join")
    await until(page, "window.herewith.phase === 'call'")  # the signaling WebSocket connected under connect-src
    config = await page.evaluate("JSON.parse(document.getElementById('herewith-config').textContent)")
    assert config["metadata"] == metadata
    assert await page.evaluate("document.querySelectorAll('script[type=module][src*=\"app.js\"]').length") == 1
    primary = await page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--herewith-primary')")
    assert primary.strip() == "#ff0066"
    await until(page, "document.getElementById('herewith-logo').complete "
                      "&& document.getElementById('herewith-logo').naturalWidth === 300")
    assert_nothing_blocked(await page.evaluate("window.__csp"), seen)
    assert all(url.startswith(server.base_url) or url.startswith("data:") for url in seen["requests"]), seen["requests"]


async def test_api_docs_render_from_this_server(server: ThreadServer, browser: Browser) -> None:
    page, seen = await watched_page(browser)
    await page.goto(server.base_url + "/v1/docs")
    await page.wait_for_selector(".opblock", timeout=20_000)  # Swagger UI rendered the operations
    assert await page.locator(".opblock").count() >= 4
    assert_nothing_blocked(await page.evaluate("window.__csp"), seen)
    assert all(url.startswith(server.base_url) or url.startswith("data:") for url in seen["requests"]), seen["requests"]
