"""Browser fixtures: headless Debian Chromium driven by Playwright, with a fake camera, microphone and screen.

These tests run inside the test network namespace (``-m netns``; DESIGN.md "Network rule for tests"):
``ip netns exec herewith-test env HEREWITH_TEST_DATABASES=sqlite .venv/bin/pytest -m netns tests/e2e``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROME_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu",
    "--use-fake-ui-for-media-stream",        # grant camera/microphone without a prompt
    "--use-fake-device-for-media-stream",    # synthetic camera (moving pattern) and microphone (beeps)
    "--auto-select-desktop-capture-source=Entire screen",  # getDisplayMedia picks the (virtual) screen
    "--allow-loopback-in-peer-connection",   # host candidates on 127.0.0.1
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-quic", "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-renderer-backgrounding", "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
]


@pytest.fixture(scope="session")
async def playwright_instance() -> AsyncIterator[Any]:
    async with async_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
async def browsers(playwright_instance: Any) -> AsyncIterator[list[Browser]]:
    """Two separate Chromium processes: two people on two machines."""
    launched = [await playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS) for _ in range(2)]
    yield launched
    for b in launched:
        await b.close()


@pytest.fixture
async def open_page(browsers: list[Browser]) -> AsyncIterator[Any]:
    """``await open_page(url, browser=0)`` -> a Page in a fresh context of browser 0 or 1."""
    contexts = []

    async def opener(url: str, browser: int = 0, **context_args: Any) -> Page:
        ctx = await browsers[browser % len(browsers)].new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True, **context_args)
        contexts.append(ctx)
        page = await ctx.new_page()
        page.on("pageerror", lambda exc: print(f"[page {browser}] error: {exc}"))
        page.on("console", lambda m: print(f"[page {browser}] {m.type}: {m.text}") if m.type in ("error", "warning") else None)
        await page.goto(url)
        return page

    yield opener
    for ctx in contexts:
        try:
            await ctx.close()
        except Exception:  # noqa: BLE001
            pass


async def create_meeting(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    payload = {"endDate": "2099-02-18T14:23:00.000Z", "fields": ["hostRoomUrl", "viewerRoomUrl"], **body}
    r = await client.post("/meetings", json=payload)
    assert r.status_code == 201, r.text
    return r.json()


def with_params(url: str, **params: str) -> str:
    from urllib.parse import urlencode

    sep = "&" if "?" in url else "?"
    return url + sep + urlencode(params)


async def join(page: Page, name: str | None = None) -> None:
    """Fill the name on the pre-call screen, click Join, and wait until in the call (or in the lobby)."""
    await page.wait_for_function("window.herewith && window.herewith.phase === 'precall' && !document.getElementById('precall').hidden")
    await page.wait_for_function("document.getElementById('join') && !document.getElementById('join').disabled")
    if name is not None:
        await page.fill("#display-name", name)
    await page.click("#join")


async def wait_phase(page: Page, phase: str, timeout: float = 15_000) -> None:
    await page.wait_for_function(f"window.herewith.phase === {phase!r}", timeout=timeout)


async def stats(page: Page) -> dict[str, Any]:
    return await page.evaluate("window.herewith.getStats()")


async def wait_media(page: Page, expr: str, timeout: float = 20_000) -> dict[str, Any]:
    """Poll ``getStats()`` until ``expr`` (JS over ``s``, the summary) is true; return the summary."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout / 1000
    check = f"(async () => {{ const s = await window.herewith.getStats(); return [Boolean({expr}), s]; }})()"
    while True:
        ok, summary = await page.evaluate(check)
        if ok:
            return summary
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expr}: {summary}")
        await asyncio.sleep(0.1)
