"""Live captions end to end in headless Chromium, inside the test network namespace (peer-to-peer rooms).

Two people, each a separate Chromium whose fake microphone plays a different sentence spoken by espeak-ng
(made at test time; a WAV with silence around the sentence, looped by Chromium). The meeting's
``liveTranscription.startTrigger`` is ``manual``: the host presses Start captions; the server launches its
captioner process (herewith.captions.captioner), which joins as ``captioner``; each page opens an audio-only
connection to it (aiortc on the server's side), and its Whisper decodes come back as ``caption`` messages.

Checked: a visitor has no captions button and the server refuses the visitor's ``captions_start``; the other
person's page shows final captions holding the speaker's keywords under the speaker's tile, within LATENCY_LIMIT of the
end of the utterance as that page heard it (the speaker's audio level, measured in the listener's page with
WebAudio; the median of the first three utterances); the captioner is in neither the grid nor the people
list; Stop captions stops it; when both have left, the session's captions are listed as a
``LIVE_TRANSCRIPTION`` transcription whose Markdown names both speakers. A group room (Janus): captions start
by themselves with the second person and reach the other page (the aiortc subscriber path).

Run: ``scripts/netns.sh up; ip netns exec herewith-test env HEREWITH_TEST_DATABASES=sqlite
.venv/bin/pytest -m netns tests/e2e/test_live_captions.py``
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from herewith.captions.service import missing_speech_dependencies
from herewith.config import Settings
from tests.e2e.conftest import CHROMIUM, CHROME_ARGS, create_meeting, join, wait_phase, with_params

pytestmark = [pytest.mark.netns, pytest.mark.timeout(300)]

HOST_TEXT = "good morning everyone, welcome to the weekly budget meeting"
HOST_KEYWORDS = ("morning", "welcome", "weekly", "budget", "meeting")
GUEST_TEXT = "please send the quarterly report to the marketing team"
GUEST_KEYWORDS = ("send", "quarterly", "report", "marketing", "team")
# Seconds from the end of an utterance to its final caption on the other page (median of the first three).
# The target of 2-3 s is a speed figure, measured by bench/stt_live.py on a quiet machine (a timed test on a
# shared 2-core machine running two Chromiums measured 2-11 s per utterance at load average 7-16); this bound
# catches a captioner that has stopped keeping up, without failing on a loaded machine.
LATENCY_LIMIT = 8.0


def speech_wav(text: str, path: Path, before: float, after: float) -> Path:
    """espeak-ng says ``text``; ffmpeg pads it with ``before``/``after`` seconds of silence, 48 kHz mono."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(raw), text], check=True, timeout=60)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(raw), "-af",
                    f"adelay={int(before * 1000)},apad=pad_dur={after}", "-ar", "48000", "-ac", "1",
                    "-c:a", "pcm_s16le", str(path)], check=True, timeout=60)
    return path


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("espeak-ng") is None or shutil.which("ffmpeg") is None:
        pytest.skip("espeak-ng and ffmpeg are needed for the fake microphones")
    missing = missing_speech_dependencies()
    if missing:
        pytest.skip(f"the speech extra is not installed: {missing}")
    d = tmp_path_factory.mktemp("voices")
    # Different pauses, so the two people rarely speak at once; each loop is 13-14 s long.
    return {"host": speech_wav(HOST_TEXT, d / "host.wav", 2.0, 8.0),
            "guest": speech_wav(GUEST_TEXT, d / "guest.wav", 6.0, 4.0)}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A server whose captioner gathers ICE candidates on loopback (the namespace has no other address that
    aioice would use) and runs two decoder processes."""
    return Settings(data_dir=tmp_path / "data", secret_key="test-secret-key-0123456789abcdef",
                    live_caption_ice_addresses=["127.0.0.1"], live_caption_workers=2)


@pytest.fixture
async def people(playwright_instance: Any) -> AsyncIterator[Any]:
    launched: list[Browser] = []

    async def launch(audio: Path) -> Browser:
        browser = await playwright_instance.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROME_ARGS, f"--use-file-for-fake-audio-capture={audio}"])
        launched.append(browser)
        return browser

    yield launch
    for b in launched:
        try:
            await b.close()
        except Exception:  # noqa: BLE001
            pass


async def enter(browser: Browser, url: str, name: str) -> Page:
    """Join with the camera off: captions need the microphone, and two video encoders would only load the
    shared test machine."""
    ctx = await browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    page = await ctx.new_page()
    page.on("pageerror", lambda exc: print(f"[{name}] error: {exc}"))
    page.on("console", lambda m: print(f"[{name}] {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    await page.goto(with_params(url, displayName=name))
    await page.wait_for_function("document.getElementById('pre-cam') && !document.getElementById('join').disabled")
    await page.click("#pre-cam")
    await join(page)
    await wait_phase(page, "call")
    return page


# The listener's ear: the level of a remote participant's audio as this page plays it (its hidden <audio>, or
# its tile's <video>), sampled every 10 ms
# with an AnalyserNode; window.__loud[id] holds the Date.now() of every loud sample (the last 3 minutes).
LISTEN = """(id) => {
  const sink = document.querySelector(`audio[data-key="${CSS.escape(id + ':camera')}"]`)
    || document.querySelector(`.tile[data-key="${CSS.escape(id + ':camera')}"] video`);
  const stream = sink && sink.srcObject;
  if (!stream || !stream.getAudioTracks().length) return false;
  const ctx = new AudioContext();
  const source = ctx.createMediaStreamSource(new MediaStream(stream.getAudioTracks()));
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 512;
  source.connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  window.__loud = window.__loud || {};
  const loud = window.__loud[id] = [];
  setInterval(() => {
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const x of buf) sum += x * x;
    if (Math.sqrt(sum / buf.length) > 0.02) loud.push(Date.now());
    while (loud.length && loud[0] < Date.now() - 180000) loud.shift();
  }, 10);
  return true;
}"""


async def latencies(page: Page, speaker_id: str, keywords: tuple[str, ...], name: str, count: int = 3,
                    timeout: float = 75.0) -> list[float]:
    """The latencies (seconds) of the first ``count`` final captions of ``speaker_id``'s utterances that
    hold its keywords, as ``page`` received them (fewer if ``timeout`` runs out after the first)."""
    deadline = time.monotonic() + timeout
    first = await final_caption_of(page, speaker_id, keywords, timeout=timeout)
    assert first["displayName"] == name
    seen: dict[str, float] = {first["utteranceId"]: await utterance_latency(page, speaker_id, first)}
    while len(seen) < count and time.monotonic() < deadline:
        for c in await page.evaluate("window.herewith.captions.received"):
            words = c["text"].lower()
            if (c["participantId"] == speaker_id and c["final"] and c["utteranceId"] not in seen
                    and sum(k in words for k in keywords) >= 4):
                seen[c["utteranceId"]] = await utterance_latency(page, speaker_id, c)
        await asyncio.sleep(0.3)
    values = [round(v, 2) for v in seen.values()]
    print(f"{name}'s captions on the other page: {values} s after the end of each utterance")
    return values


async def press(page: Page, selector: str) -> None:
    """Click a visible button (the click event in the page: Playwright's scrolling and stability checks time
    out on a heavily loaded machine)."""
    await page.wait_for_selector(selector, state="visible")
    await page.evaluate(f"document.querySelector({selector!r}).click()")


async def final_caption_of(page: Page, speaker_id: str, keywords: tuple[str, ...], timeout: float) -> dict[str, Any]:
    """Wait for a final caption of ``speaker_id`` holding at least 4 of ``keywords``; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        received = await page.evaluate("window.herewith.captions.received")
        for c in received:
            words = c["text"].lower()
            if c["participantId"] == speaker_id and c["final"] and sum(k in words for k in keywords) >= 4:
                return c
        await asyncio.sleep(0.2)
    received = await page.evaluate("window.herewith.captions.received")
    raise AssertionError(f"no final caption of {speaker_id} with {keywords}: {received[-10:]}")


async def utterance_latency(page: Page, speaker_id: str, caption: dict[str, Any]) -> float:
    """Seconds from the end of the speaker's last utterance that had ended when the caption arrived (a loud
    sample this page heard followed by at least a second of quiet) to the caption's arrival."""
    loud = await page.evaluate(f"(window.__loud || {{}})[{speaker_id!r}] || []")
    arrived = caption["receivedAt"]
    assert loud, "the listener heard nothing of the speaker"
    ends = [t for t, nxt in zip(loud, [*loud[1:], float("inf")], strict=True) if nxt - t > 1000]
    before = [t for t in ends if t <= arrived]
    assert before, f"the listener heard no utterance of the speaker end before the caption: {len(loud)} loud samples"
    return (arrived - before[-1]) / 1000


async def test_live_captions_in_a_peer_to_peer_room(client: httpx.AsyncClient, server: Any, people: Any,
                                                     voices: dict[str, Path]) -> None:
    meeting = await create_meeting(client, liveTranscription={
        "destination": None, "startTrigger": "manual", "language": "en", "liveCaptions": True})
    host = await enter(await people(voices["host"]), meeting["hostRoomUrl"], "Hannah")
    guest = await enter(await people(voices["guest"]), meeting["roomUrl"], "Gustav")
    host_id = await host.evaluate("window.herewith.self")
    guest_id = await guest.evaluate("window.herewith.self")
    for page, other in ((host, guest_id), (guest, host_id)):
        await page.wait_for_function(f"document.querySelector('.tile[data-key=\"{other}:camera\"] video')?.srcObject?.getAudioTracks().length > 0",
                                     timeout=20_000)
        assert await page.evaluate(LISTEN, other)

    # Only hosts: the visitor has no button, and the server refuses its captions_start.
    assert await guest.locator("#captions").is_hidden()
    assert await host.locator("#captions").is_visible()
    refused = await guest.evaluate("""() => new Promise(resolve => {
      const url = location.origin.replace(/^http/, 'ws') + '/signal/' + window.herewith.config.roomName.replace(/^\\//, '');
      const ws = new WebSocket(url);
      ws.onopen = () => ws.send(JSON.stringify({type: 'join', displayName: 'Mallory', audio: false, video: false}));
      ws.onmessage = ev => {
        const m = JSON.parse(ev.data);
        if (m.type === 'joined') ws.send(JSON.stringify({type: 'captions_start'}));
        if (m.type === 'error' || m.type === 'captions') { ws.close(); resolve(m); }
      };
      setTimeout(() => resolve(null), 10000);
    })""")
    assert refused is not None and refused["type"] == "error" and refused["code"] == "forbidden", refused
    assert refused["ref"] == "captions_start"

    # The host starts captions; the captioner joins (not shown), then captions come.
    await press(host, "#captions")
    await host.wait_for_function("window.herewith.captions.state === 'on'", timeout=120_000)
    await guest.wait_for_function("window.herewith.captions.state === 'on'", timeout=30_000)
    for page in (host, guest):
        people_list = await page.evaluate("window.herewith.participants().map(p => p.role)")
        assert "captioner" in people_list
        assert await page.locator(".tile").count() == 2, "the captioner has no tile"
        assert "captioner" not in (await page.locator("#people").inner_text()).lower()

    host_to_guest, guest_to_host = await asyncio.gather(latencies(guest, host_id, HOST_KEYWORDS, "Hannah"),
                                                        latencies(host, guest_id, GUEST_KEYWORDS, "Gustav"))
    # Shown under the speaker's tile on the other page.
    await guest.wait_for_function(
        f"[...document.querySelectorAll('.tile[data-key=\"{host_id}:camera\"] .caption')].some(e => e.textContent.length > 0)",
        timeout=20_000)

    # The host stops captions: everyone is told, the captioner leaves.
    await press(host, "#captions")
    await guest.wait_for_function("window.herewith.captions.state === 'off'", timeout=30_000)
    await guest.wait_for_function("!window.herewith.participants().some(p => p.role === 'captioner')", timeout=30_000)

    # Both leave: the session is over, its captions are a LIVE_TRANSCRIPTION.
    for page in (guest, host):
        await page.evaluate("window.herewith.leave()")
    deadline = time.monotonic() + 30
    while True:
        r = await client.get("/transcriptions")
        assert r.status_code == 200, r.text
        live = [t for t in r.json()["results"] if t.get("type") == "LIVE_TRANSCRIPTION"]
        if live or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    assert len(live) == 1, r.json()
    assert live[0]["state"] == "ready"
    assert live[0]["roomName"] == meeting["roomName"]
    link = (await client.get(f"/transcriptions/{live[0]['transcriptionId']}/access-link")).json()["accessLink"]
    async with httpx.AsyncClient(timeout=10) as plain:
        markdown = (await plain.get(link)).text
    assert "Hannah" in markdown and "Gustav" in markdown and "quarterly report" in markdown.lower()

    # Within LATENCY_LIMIT of the end of the utterance, as the other page heard it: the median of the first utterances
    # (the first one also pays for the decoders' first run).
    for direction, values in (("host -> guest", host_to_guest), ("guest -> host", guest_to_host)):
        median = statistics.median(values)
        assert median <= LATENCY_LIMIT, f"{direction}: final captions {values} s after the end of the utterance"


@pytest.fixture
def group_settings(tmp_path: Path) -> Settings:
    """A server with its own Janus on the namespace's veth (as tests/e2e/test_group_sfu.py); the captioner's
    candidates on that address too, where Janus reaches it."""
    return Settings(data_dir=tmp_path / "data", secret_key="test-secret-key-0123456789abcdef",
                    janus="local", janus_ice_enforce_list="v0", janus_rtp_ports="45000-45999",
                    live_caption_ice_addresses=["127.0.0.2"], live_caption_workers=2)


async def test_live_captions_in_a_group_room(group_settings: Settings, people: Any, voices: dict[str, Path]) -> None:
    """Janus: the captioner subscribes to the publishers' audio only; captions start by themselves
    (``automatic-2nd-participant``) and reach the other page under the speaker's tile."""
    from tests.support.servers import ThreadServer, create_org_key

    server = ThreadServer(group_settings).start()
    try:
        org = await create_org_key(server.settings, "Org G")
        async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=org.headers, timeout=30) as client:
            meeting = await create_meeting(client, roomMode="group", liveTranscription={
                "destination": None, "startTrigger": "automatic-2nd-participant", "language": "en",
                "liveCaptions": True})
            host = await enter(await people(voices["host"]), meeting["hostRoomUrl"], "Hannah")
            await asyncio.sleep(1.0)
            assert await host.evaluate("window.herewith.captions.state") == "off"  # one person: no captions yet
            guest = await enter(await people(voices["guest"]), meeting["roomUrl"], "Gustav")
            host_id = await host.evaluate("window.herewith.self")
            await guest.wait_for_function("window.herewith.captions.state === 'on'", timeout=120_000)
            await guest.wait_for_function(
                f"document.querySelector('.tile[data-key=\"{host_id}:camera\"] video')?.srcObject?.getAudioTracks().length > 0",
                timeout=30_000)
            assert await guest.evaluate(LISTEN, host_id)
            caption = await final_caption_of(guest, host_id, HOST_KEYWORDS, timeout=60)
            assert caption["displayName"] == "Hannah"
            # The latency is printed, not held to the bound of the peer-to-peer test: Janus, two Chromiums and
            # the captioner share the test machine's two cores here.
            latency = await utterance_latency(guest, host_id, caption)
            print(f"group room, host -> guest: {caption['text']!r}, {latency:.2f} s after the end of the utterance")
            await guest.wait_for_function(
                f"[...document.querySelectorAll('.tile[data-key=\"{host_id}:camera\"] .caption')].some(e => e.textContent.length > 0)",
                timeout=20_000)
    finally:
        server.stop()
