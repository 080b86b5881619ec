"""Big group rooms: every browser receives only what its grid shows (paged grid, active speaker, simulcast).

Inside the test network namespace, with a real Janus supervised by the server (``HEREWITH_JANUS=local``):

* ``test_big_room_pages_and_active_speaker``: twenty cheap publishers (aiortc relaying pre-encoded VP8 and Opus,
  tests/media/relay.py; silent) and two Chromium participants at 1280x800 (9 tiles a page). Each page decodes at
  most its page's remote videos (getStats of its subscriber connection), its inbound video stays under
  ``VIDEO_BOUND_KBPS``, and when a publisher from the last page starts speaking (its audio switches from silence
  to speech) it is on the first page of both browsers, highlighted, within ``SPEAKER_LIMIT`` seconds.
* ``test_simulcast_layers_follow_the_tile``: a Chromium publisher sends three layers (its outbound stats), a
  Chromium subscriber with a small tile receives the low layer (frame height from getStats) and a higher one
  once its tile grows.

Run: ``scripts/netns.sh up; ip netns exec herewith-test env HEREWITH_TEST_DATABASES=sqlite
.venv/bin/pytest -m netns tests/e2e/test_group_grid.py``
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from playwright.async_api import Browser, Page

from herewith.config import Settings
from tests.e2e.conftest import create_meeting, join, wait_phase, with_params
from tests.media.relay import RelayPublisher, make_silence, make_video
from tests.support.servers import ProcessServer, create_org_key

pytestmark = pytest.mark.netns

PUBLISHERS = 20
# The stated bound on a page's inbound video: at most 8 remote tiles of a 9-tile page, each a 320x180 VP8
# stream of ~150 kbit/s here (a camera's 1/2 layer in a real room: ~250 kbit/s): 8 x 250 = 2 Mbit/s, with room.
VIDEO_BOUND_KBPS = 3000
SPEAKER_LIMIT = 2.0  # seconds from the first packet of speech to the first page of both browsers


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A server that runs its own Janus, bound to the namespace's veth (libnice never uses 'lo')."""
    return Settings(data_dir=tmp_path / "data", secret_key="test-secret-key-0123456789abcdef",
                    janus="local", janus_ice_enforce_list="v0", janus_rtp_ports="35000-39999",
                    janus_room_bitrate=1_000_000)


@pytest.fixture
async def own_process(tmp_path: Path) -> AsyncIterator[tuple[ProcessServer, httpx.AsyncClient]]:
    """``herewith serve`` (its own Janus) in a child process: twenty aiortc publishers in the test process
    would otherwise share one interpreter with the server that relays their signaling. Yields it and an API
    client for an organization in its database."""
    settings = Settings(data_dir=tmp_path / "data", secret_key="test-secret-key-0123456789abcdef")
    org = await create_org_key(settings, "Big room")
    server = ProcessServer({
        "HEREWITH_DATA_DIR": str(settings.data_dir), "HEREWITH_SECRET_KEY": settings.secret_key,
        "HEREWITH_JANUS": "local", "HEREWITH_JANUS_ICE_ENFORCE_LIST": "v0", "HEREWITH_JANUS_RTP_PORTS": "35000-39999",
        "HEREWITH_RATELIMIT_ENABLED": "false", "HEREWITH_BACKGROUND_TASKS": "false", "HEREWITH_LOG_LEVEL": "warning",
    }, log_path=tmp_path / "server.log")
    await asyncio.to_thread(server.start, 60.0)
    try:
        async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=org.headers, timeout=30) as client:
            yield server, client
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture(autouse=True)
def _aiortc_on_the_veth() -> Iterator[None]:
    """aiortc offers host candidates on 127.0.0.2 only (the address Janus uses in the namespace)."""
    import aioice.ice

    original = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.2"]
    yield
    aioice.ice.get_host_addresses = original


@pytest.fixture(scope="session")
def media_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(video, silence): 320x180 VP8 at 15 fps (~150 kbit/s) and Opus silence, made once by ffmpeg."""
    d = tmp_path_factory.mktemp("relay-media")
    return make_video(d / "video.webm"), make_silence(d / "silence.webm")


@pytest.fixture
async def pages(browsers: list[Browser]) -> AsyncIterator[Any]:
    contexts = []

    async def opener(url: str, browser: int, *, viewport: dict[str, int], options: str) -> Page:
        ctx = await browsers[browser % len(browsers)].new_context(viewport=viewport, bypass_csp=True)
        contexts.append(ctx)
        await ctx.add_init_script(f"window.HEREWITH_SFU_OPTIONS = {options};")
        page = await ctx.new_page()
        page.on("pageerror", lambda exc: print(f"[page {browser}] error: {exc}"))
        await page.goto(url)
        return page

    yield opener
    for ctx in contexts:
        try:
            await ctx.close()
        except Exception:  # noqa: BLE001
            pass


async def inbound(page: Page) -> list[dict[str, Any]]:
    """The page's subscriber connection, one entry per receiving m-line (sfu.js summary)."""
    s = await page.evaluate("window.herewith.getStats()")
    return s.get("inbound") or []


async def grid(page: Page) -> dict[str, Any]:
    return await page.evaluate("window.herewith.grid()")


async def until(what: str, check: Any, timeout: float, interval: float = 0.1) -> Any:
    """Poll ``await check()`` until it returns something true; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:  # checked once more after the deadline: a starved event loop is not a failure of the room
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last: {last})")
        await asyncio.sleep(interval)


@pytest.mark.timeout(420)
async def test_big_room_pages_and_active_speaker(own_process: tuple[ProcessServer, httpx.AsyncClient], pages: Any,
                                                 media_files: tuple[Path, Path]) -> None:
    server, client = own_process
    ws_url = server.base_url.replace("http://", "ws://")
    video, silence = media_files
    meeting = await create_meeting(client, roomMode="group")
    room = urlparse(meeting["roomUrl"]).path
    started = time.monotonic()

    def step(name: str) -> None:
        print(f"[{time.monotonic() - started:5.1f} s] {name}")

    pubs = [RelayPublisher(ws_url, room, display=f"pub-{i:02d}", video=video, silence=silence)
            for i in range(PUBLISHERS)]
    try:
        for i in range(0, PUBLISHERS, 5):  # five at a time: joins are quick, ICE for twenty at once is not
            await asyncio.gather(*(p.join(timeout=60) for p in pubs[i:i + 5]))
        await asyncio.gather(*(p.wait_message("sfu_published", timeout=60) for p in pubs))
        step(f"{PUBLISHERS} relay publishers joined and published")

        # two browsers, laptop-sized: 9 tiles a page; their microphones off (listeners), one camera layer each
        chrome: list[Page] = []
        for i in range(2):
            page = await pages(with_params(meeting["roomUrl"], displayName=f"Chrome {i}"), i,
                               viewport={"width": 1280, "height": 800},
                               options="{simulcast: false, scaleResolutionDownBy: 4, maxBitrate: 150000}")  # 160x120
            await page.wait_for_function("window.herewith && window.herewith.phase === 'precall'")
            await page.evaluate("window.herewith.setMic(false)")  # before joining: not one beep of the fake mic
            await join(page)
            await wait_phase(page, "call", timeout=60_000)
            chrome.append(page)
            step(f"chrome {i} in the call")
        ids = {p.display: p.id for p in pubs}
        step("two Chromium participants in the call")

        # -- each page: 9 tiles a page, 3 pages for 22 people; it decodes its page's remote videos and no others
        for page in chrome:
            g = await until("a full first page", lambda page=page: _full_page(page), 30)
            assert g["pageSize"] == 9 and g["pages"] == 3, g
        for page in chrome:
            shown = {t["id"] for t in (await grid(page))["tiles"] if not t["self"]}
            await until("frames from every tile of the page", lambda page=page, shown=shown: _decoding(page, shown), 40)
        window = 5.0
        for n, page in enumerate(chrome):
            before = {e["mid"]: e for e in await inbound(page)}
            await asyncio.sleep(window)
            after = await inbound(page)
            g = await grid(page)
            shown = {t["id"] for t in g["tiles"] if not t["self"]}
            decoding = {e["participantId"] for e in after if e["kind"] == "video"
                        and e["framesDecoded"] > before.get(e["mid"], {}).get("framesDecoded", 0)}
            video_bytes = sum(e["bytesReceived"] - before.get(e["mid"], {}).get("bytesReceived", 0)
                              for e in after if e["kind"] == "video" and e["mid"] in before)
            kbps = 8 * video_bytes / window / 1000
            audio_from = {e["participantId"] for e in after if e["kind"] == "audio"}
            print(f"page {n}: page {g['page'] + 1}/{g['pages']}, {len(shown)} remote tiles, decoding {len(decoding)} "
                  f"videos, inbound video {kbps:.0f} kbit/s, audio m-lines {len(audio_from)}")
            assert decoding <= shown and len(decoding) >= len(shown) - 1, (decoding, shown)
            assert len(decoding) <= 8
            assert 0 < kbps < VIDEO_BOUND_KBPS
            assert len(audio_from) <= 3  # audio from the loudest few only (nobody spoke yet: none or stale)
        step("each page decodes only its page's videos, under the bitrate bound")

        # -- a publisher on the last page starts speaking: it reaches the first page of both, highlighted
        speaker = pubs[-1]
        for page in chrome:
            assert speaker.id not in {t["id"] for t in (await grid(page))["tiles"]}
        speaker.speak()
        t0, wall0 = time.monotonic(), time.time()

        async def on_first_page(page: Page) -> float | None:
            """Seconds from the first packet of speech to the speaker's tile coming onto the shown first page
            (the page's own clock: Date.now() when it rendered the tile, so a busy page answering the test late
            does not count)."""
            g = await grid(page)
            tile = next((t for t in g["tiles"] if t["id"] == speaker.id and t["source"] == "camera"), None)
            if g["page"] == 0 and g["activeSpeaker"] == speaker.id and tile is not None:
                return tile["since"] / 1000 - wall0
            return None

        try:
            delays = await asyncio.gather(*(until("the speaker on the first page", lambda p=p: on_first_page(p),
                                                     SPEAKER_LIMIT + 20, 0.1) for p in chrome))
        except AssertionError:
            print("active_speaker messages (speaker, who, at s):", speaker.id, [(m["participantId"], m["speakers"], round(m["_at"] - t0, 2))
                                                for m in pubs[0].messages if m["type"] == "active_speaker"])
            print("publishers' last errors:", [p.errors[-2:] for p in pubs if p.errors])
            for p in chrome:
                print("grid:", await grid(p))
            raise
        told = next((m["_at"] for m in pubs[0].messages if m["type"] == "active_speaker" and m.get("_at", 0) > t0
                     and m["participantId"] == speaker.id), None)
        print(f"speaker on the first page after {', '.join(f'{d:.2f}' for d in delays)} s "
              f"(the server told the others after {told - t0 if told else float('nan'):.2f} s)")
        assert max(delays) < SPEAKER_LIMIT, delays
        for page in chrome:
            assert await page.evaluate(
                f"document.querySelector('.tile.camera[data-participant=\"{speaker.id}\"]').classList.contains('speaking')")
            # its video and its speech arrive
            await until("the speaker's video and audio",
                        lambda page=page: _receiving(page, speaker.id), 20)
        step("the new speaker reached the first page of both browsers")

        # -- moving to another page subscribes to that page's videos instead
        page = chrome[0]
        await page.evaluate("window.herewith.gridPage(1)")
        g = await grid(page)
        assert g["page"] == 1, g
        shown = {t["id"] for t in g["tiles"] if not t["self"]}
        await until("frames from the second page", lambda: _decoding(page, shown), 30)
        assert set(ids.values()) >= shown - {await chrome[1].evaluate("window.herewith.self")}
        step("page 2 shown and decoded")
    finally:
        await asyncio.gather(*(p.close() for p in pubs), return_exceptions=True)


async def _full_page(page: Page) -> dict[str, Any] | None:
    g = await grid(page)
    return g if len(g["tiles"]) == 9 else None


async def _decoding(page: Page, shown: set[str]) -> bool:
    """True when every participant in ``shown`` has a video m-line that decoded frames."""
    frames: dict[str, int] = {}
    for e in await inbound(page):
        if e["kind"] == "video" and e["participantId"]:
            frames[e["participantId"]] = max(frames.get(e["participantId"], 0), e["framesDecoded"])
    return all(frames.get(pid, 0) >= 3 for pid in shown)


async def _receiving(page: Page, pid: str) -> bool:
    entries = [e for e in await inbound(page) if e["participantId"] == pid]
    return any(e["kind"] == "video" and e["framesDecoded"] > 0 for e in entries) and \
        any(e["kind"] == "audio" and e["bytesReceived"] > 2000 for e in entries)


async def video_from(page: Page, pid: str) -> dict[str, Any] | None:
    """The page's inbound video m-line from ``pid`` that decodes (the latest one), or None."""
    entries = [e for e in await inbound(page) if e["kind"] == "video" and e["participantId"] == pid and e["frameHeight"]]
    return entries[-1] if entries else None


@pytest.mark.timeout(300)
async def test_simulcast_layers_follow_the_tile(server: Any, client: httpx.AsyncClient, pages: Any) -> None:
    meeting = await create_meeting(client, roomMode="group")
    # the publisher: the page's defaults (three layers: 1/4, 1/2 and full resolution of the 640x480 fake camera)
    sender = await pages(with_params(meeting["roomUrl"], displayName="Sender"), 0,
                         viewport={"width": 800, "height": 600}, options="{}")
    await join(sender)
    await wait_phase(sender, "call", timeout=60_000)
    sender_id = await sender.evaluate("window.herewith.self")

    seen: list[Any] = []

    async def three_layers() -> list[dict[str, Any]] | None:
        layers = (await sender.evaluate("window.herewith.getStats()"))["publisher"]["layers"]
        seen[:] = [layers]
        return layers if len(layers) == 3 and all(lr["bytesSent"] > 0 and lr["frameHeight"] for lr in layers) else None

    try:
        layers = await until("three simulcast layers sent", three_layers, 40, 0.5)
    except AssertionError:
        print("sender's layers last seen:", seen)
        raise
    heights = sorted(lr["frameHeight"] for lr in layers)
    print(f"sender's layers: {[(lr['rid'], lr['frameWidth'], lr['frameHeight']) for lr in layers]}")
    assert heights[0] < heights[1] < heights[2], layers
    # ... and arrive at Janus: its publisher stream knows the three rids and gets RTP on each substream
    group_rooms = server.services.group_rooms
    room = group_rooms.rooms[meeting["meetingId"]]
    peer = room.peers[sender_id]
    info = await asyncio.to_thread(server.run_coro, room.instance.client.handle_info(peer.session.id, peer.pub.id))
    text = str(info)
    print(f"janus publisher handle: {text[:2000]}")
    assert "'h'" in text and "'m'" in text and "'l'" in text

    # the receiver: a viewer on a phone-sized screen, so the sender's tile is small
    receiver = await pages(with_params(meeting["viewerRoomUrl"], displayName="Receiver"), 1,
                           viewport={"width": 360, "height": 640}, options="{}")
    await join(receiver)
    await wait_phase(receiver, "call", timeout=60_000)
    receiver_id = await receiver.evaluate("window.herewith.self")
    g = await grid(receiver)
    assert g["pageSize"] == 4 and [t["id"] for t in g["tiles"]] == [sender_id], g
    tile = await receiver.evaluate(f"document.querySelector('.tile[data-participant=\"{sender_id}\"]').getBoundingClientRect().height")

    async def low() -> dict[str, Any] | None:
        v = await video_from(receiver, sender_id)
        return v if v and v["frameHeight"] == heights[0] else None

    v = await until("the low layer on a small tile", low, 40, 0.25)
    print(f"small tile ({tile:.0f} px high): receiving {v['frameWidth']}x{v['frameHeight']}")
    rpeer = room.peers[receiver_id]
    assert sorted(rpeer.layers.values()) == [0], rpeer.layers

    # the tile grows (a laptop window): the server asks Janus for a higher layer
    grown = time.monotonic()
    await receiver.set_viewport_size({"width": 1280, "height": 800})

    async def higher() -> dict[str, Any] | None:
        v = await video_from(receiver, sender_id)
        return v if v and v["frameHeight"] > heights[0] else None

    try:
        v = await until("a higher layer on a large tile", higher, 40, 0.25)
    except AssertionError:
        print("receiver's inbound:", await inbound(receiver), "layers asked:", rpeer.layers, "grid:", await grid(receiver))
        print("sender's layers:", (await sender.evaluate("window.herewith.getStats()"))["publisher"]["layers"])
        info = await asyncio.to_thread(server.run_coro, room.instance.client.handle_info(rpeer.session.id, rpeer.sub.id))
        print("janus subscriber:", info.get("plugin_specific"))
        raise
    tile = await receiver.evaluate(f"document.querySelector('.tile[data-participant=\"{sender_id}\"]').getBoundingClientRect().height")
    print(f"large tile ({tile:.0f} px high): receiving {v['frameWidth']}x{v['frameHeight']} "
          f"{time.monotonic() - grown:.2f} s after the window grew")

    async def asked_higher() -> bool:  # the server's configure (its answer may come after the first frames)
        return bool(rpeer.layers) and min(rpeer.layers.values()) >= 1

    await until("the server asking for a higher layer", asked_higher, 10)
