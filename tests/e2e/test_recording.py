"""Recording end to end in headless Chromium, inside the test network namespace.

Two people in a room, each a separate Chromium with its own fake camera (a y4m file made by ffmpeg: one red,
one blue, with a moving white square) and microphone. The host presses Record; the server's recorder pool
(herewith.media.recorder) launches its own headless Chromium, which opens the room page in recorder mode
(web/static/recorder.js), joins as ``recorder`` (never shown), draws the grid into a 1280x720 canvas, mixes
the audio and streams MediaRecorder chunks to the ingest socket; Stop; the server finalizes the file. Checked
with ffprobe and Pillow: video >= 640x360 and audio, the duration, and a frame from the middle that shows both
people's tiles. The same in a group room (Janus). Sync: a source that flashes and beeps at the same instants.
Local recording: the host's own browser records the same composite and hands over a WebM download. And a
recorder killed with SIGKILL mid-recording is relaunched by the pool; the file holds both parts.

Run: ``scripts/netns.sh up; ip netns exec herewith-test env HEREWITH_TEST_DATABASES=sqlite
.venv/bin/pytest -m netns tests/e2e/test_recording.py``
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.async_api import Browser, Page

from herewith.config import Settings
from tests.e2e.conftest import CHROMIUM, CHROME_ARGS, create_meeting, join, wait_media, wait_phase, with_params

pytestmark = [pytest.mark.netns, pytest.mark.timeout(300)]

CLOUD = {"type": "cloud", "destination": None, "startTrigger": "none"}
RECORD_SECONDS = 20
# The sync source: a 6 s loop with a flash (white frames) and a beep (1 kHz) at the same instants. The gaps
# between events all differ (1.2, 1.9, 0.8, 2.1 s), so two recordings of it line up in only one way.
SYNC_EVENTS = (0.5, 1.7, 3.6, 4.4)
SYNC_LOOP = 6.0
SYNC_FLASH = 0.2
SYNC_BEEP = 0.15


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=120)


@pytest.fixture(scope="session")
def fake_media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files for Chromium's fake devices: red.y4m and blue.y4m (320x240, 25 fps, 2 s, a white square
    moving), flash.y4m (160x120, black with white flashes at SYNC_EVENTS) and beep.wav (48 kHz mono,
    silence with 1 kHz beeps at the same instants)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    d = tmp_path_factory.mktemp("fake-media")
    square = "drawbox=x='mod(t*120,300)':y=110:w=20:h=20:color=white:t=fill"
    for name, colour in (("red", "0xd02828"), ("blue", "0x2838d0")):
        _ffmpeg("-f", "lavfi", "-i", f"color=c={colour}:s=320x240:r=25:d=2,{square}", "-pix_fmt", "yuv420p",
                str(d / f"{name}.y4m"))
    flash_on = "+".join(f"between(t,{t},{t + SYNC_FLASH - 0.001})" for t in SYNC_EVENTS)
    _ffmpeg("-f", "lavfi", "-i", f"color=c=black:s=160x120:r=25:d={SYNC_LOOP},"
            f"drawbox=enable='{flash_on}':x=0:y=0:w=iw:h=ih:color=white:t=fill", "-pix_fmt", "yuv420p",
            str(d / "flash.y4m"))
    beep_on = "+".join(f"between(t,{t},{t + SYNC_BEEP})" for t in SYNC_EVENTS)
    _ffmpeg("-f", "lavfi", "-i", f"sine=f=1000:r=48000:d={SYNC_LOOP}",
            "-af", f"volume=volume='if({beep_on},6,0)':eval=frame", "-ac", "1", "-c:a", "pcm_s16le",
            str(d / "beep.wav"))
    return {p.stem: p for p in d.iterdir()}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The server with its Chromium recorder pool (the default launcher), quick finalization, and its own Janus
    on the namespace's veth for group rooms (as tests/e2e/test_group_sfu.py)."""
    return Settings(data_dir=tmp_path / "data", secret_key="test-secret-key-0123456789abcdef",
                    recording_poll_seconds=0.2, recorders_per_node=2,
                    janus="local", janus_ice_enforce_list="v0", janus_rtp_ports="40000-44999")


@pytest.fixture
async def people(playwright_instance: Any) -> AsyncIterator[Any]:
    """``await people(video=..., audio=...)`` -> a new Chromium with those fake device files; closed after."""
    launched: list[Browser] = []

    async def launch(video: Path | None = None, audio: Path | None = None) -> Browser:
        args = list(CHROME_ARGS)
        if video is not None:
            args.append(f"--use-file-for-fake-video-capture={video}")
        if audio is not None:
            args.append(f"--use-file-for-fake-audio-capture={audio}")
        browser = await playwright_instance.chromium.launch(executable_path=CHROMIUM, args=args)
        launched.append(browser)
        return browser

    yield launch
    for b in launched:
        try:
            await b.close()
        except Exception:  # noqa: BLE001
            pass


async def enter(browser: Browser, url: str, name: str) -> Page:
    ctx = await browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True, accept_downloads=True)
    page = await ctx.new_page()
    page.on("pageerror", lambda exc: print(f"[{name}] error: {exc}"))
    page.on("console", lambda m: print(f"[{name}] {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    await page.goto(with_params(url, displayName=name))
    await join(page)
    await wait_phase(page, "call")
    return page


# ----------------------------------------------------------------------------------------- analysis
def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                          "format=duration:stream=codec_type,codec_name,width,height", "-of", "json", str(path)],
                         capture_output=True, check=True, timeout=60)
    return json.loads(out.stdout)


def frame_at(path: Path, seconds: float, out: Path) -> Image.Image:
    _ffmpeg("-ss", f"{seconds:.2f}", "-i", str(path), "-frames:v", "1", str(out))
    return Image.open(out).convert("RGB")


def colour_shares(img: Image.Image) -> dict[str, float]:
    """Share of the frame's pixels that are clearly red and clearly blue (the two fake cameras)."""
    small = img.resize((320, 180))
    data = small.tobytes()  # RGB triplets
    px = [data[i:i + 3] for i in range(0, len(data), 3)]
    red = sum(1 for r, g, b in px if r > 140 and g < 90 and b < 100)
    blue = sum(1 for r, g, b in px if b > 140 and r < 100 and g < 110)
    return {"red": red / len(px), "blue": blue / len(px)}


def flash_times(path: Path, crop: str) -> list[float]:
    """Times (s) where the mean luma of ``crop`` (ffmpeg w:h:x:y) rises through the middle grey: flash onsets."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-vf",
                          f"crop={crop},signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=-", "-f", "null", "-"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    frames: list[tuple[float, float]] = []
    t = 0.0
    for line in out.splitlines():
        if line.startswith("frame:"):
            t = float(line.split("pts_time:")[1].split()[0])
        elif "YAVG=" in line:
            frames.append((t, float(line.split("=")[1])))
    return [t for (_, y0), (t, y) in zip(frames, frames[1:], strict=False) if y0 < 110 <= y]


def beep_times(path: Path) -> list[float]:
    """Times (s) where the audio's loudness (5 ms windows) rises from silence: beep onsets."""
    info = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=start_time",
                           "-of", "json", str(path)], capture_output=True, text=True, check=True, timeout=60).stdout
    start_raw = (json.loads(info)["streams"] or [{}])[0].get("start_time", "0")
    start = float(start_raw) if start_raw not in (None, "N/A") else 0.0
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", "48000",
                          "-f", "s16le", "-"], capture_output=True, check=True, timeout=120).stdout
    n = len(pcm) // 2
    samples = struct.unpack(f"<{n}h", pcm[: 2 * n])
    win = 240
    onsets, loud = [], False
    for i in range(0, n - win, win):
        rms = math.sqrt(sum(s * s for s in samples[i:i + win]) / win)
        if not loud and rms > 2000:
            onsets.append(start + i / 48000)
            loud = True
        elif loud and rms < 300:
            loud = False
    return onsets


def align(events: list[float], reference: list[float], tolerance: float = 0.12) -> tuple[float, list[float]]:
    """The shift d (s) that maps most of ``events`` onto ``reference`` (event = reference + d, within
    ``tolerance``), and the individual differences of the matched pairs. The sync source's uneven gaps make
    the best shift unique."""
    best: tuple[int, float, list[float]] = (0, 0.0, [])
    for e in events:
        for r in reference:
            d = e - r
            diffs = []
            for x in events:
                near = min(reference, key=lambda y: abs(x - y - d))
                if abs(x - near - d) <= tolerance:
                    diffs.append(x - near)
            if len(diffs) > best[0]:
                best = (len(diffs), d, diffs)
    diffs = sorted(best[2])
    return (diffs[len(diffs) // 2] if diffs else 0.0), best[2]


# ------------------------------------------------------------------------------------------- helpers
#: By recording id: (seconds the indicator showed on every page before Stop, seconds from pressing Record to
#: pressing Stop). A recording's length lies between the two, within 2 s: it holds at least what everyone was
#: shown as recorded, and no more than Record to Stop (the indicator shows once every page heard of the start,
#: so under load it lags the recorder by seconds).
PRESSED_FOR: dict[str, tuple[float, float]] = {}


async def record(host: Page, others: list[Page], seconds: float, during: Any = None) -> str:
    """Press Record, wait until everyone sees the indicator, keep recording ``seconds`` (awaiting ``during()``
    meanwhile, if given), press Stop; the recording id."""
    await host.wait_for_selector("#record:not([hidden])")
    assert await host.inner_text("#record") == "Record"
    await host.click("#record")
    pressed = time.monotonic()
    for page in (host, *others):
        await page.wait_for_selector("#rec-status:not([hidden])", timeout=45_000)
    started = time.monotonic()
    recording_id = await host.evaluate("window.herewith.recording.cloud.recordingId")
    assert recording_id
    if during is not None:
        await during()
    await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))
    assert await host.inner_text("#record") == "Stop recording"
    await host.click("#record")
    PRESSED_FOR[str(recording_id)] = (time.monotonic() - started, time.monotonic() - pressed)
    for page in (host, *others):
        await page.wait_for_selector("#rec-status", state="hidden", timeout=45_000)
    return str(recording_id)


async def download(client: httpx.AsyncClient, recording_id: str, dest: Path, timeout: float = 120.0) -> dict[str, Any]:
    """Wait until the recording is ready, download it through its access link into ``dest``; the recording."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        r = await client.get(f"/recordings/{recording_id}")
        last = r.json() if r.status_code == 200 else r.text
        if r.status_code == 200 and last["state"] == "ready":
            break
        assert not (r.status_code == 200 and last["state"] == "failed"), last
        await asyncio.sleep(0.5)
    else:
        raise AssertionError(f"recording not ready after {timeout}s: {last}")
    link = (await client.get(f"/recordings/{recording_id}/access-link")).json()
    async with httpx.AsyncClient(timeout=60) as http:
        got = await http.get(link["accessLink"])
    assert got.status_code == 200
    dest.write_bytes(got.content)
    return last


async def check_two_tiles(path: Path, tmp_path: Path, window: tuple[float, float]) -> None:
    info = probe(path)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert video["width"] >= 640 and video["height"] >= 360, info
    assert any(s["codec_type"] == "audio" for s in info["streams"]), info
    duration = float(info["format"]["duration"])
    assert window[0] - 2 <= duration <= window[1] + 2, (window, info)
    shares = colour_shares(frame_at(path, duration / 2, tmp_path / "middle.png"))
    assert shares["red"] > 0.05 and shares["blue"] > 0.05, shares  # both people's tiles are in the frame


async def check_recorder_hidden(page: Page) -> None:
    """The recorder is in the room, in no grid and not in the people list."""
    await page.wait_for_function("window.herewith.participants().some(p => p.role === 'recorder')")
    assert await page.evaluate("document.querySelectorAll('#grid .tile').length") == 2
    assert "recorder" not in (await page.inner_text("#people")).lower()


# --------------------------------------------------------------------------------------------- tests
async def test_cloud_recording_of_a_normal_room_shows_both_people(client: httpx.AsyncClient, server: Any, people: Any,
                                                                  fake_media: dict[str, Path], tmp_path: Path) -> None:
    meeting = await create_meeting(client, recording={**CLOUD, "startTrigger": "prompt"})
    pool = server.services.recordings.launcher
    pool.capacity = 0  # no free recorder at first
    ann = await enter(await people(video=fake_media["red"]), meeting["hostRoomUrl"], "Ann")
    # startTrigger prompt: the host is asked on joining; "Start recording" with no free recorder -> a notice
    await ann.wait_for_selector("#rec-prompt[open]")
    await ann.click("#rec-prompt-start")
    await ann.wait_for_selector("#rec-prompt", state="hidden")
    await ann.wait_for_function("window.herewith.notices().some(n => /recorder/i.test(n.text))", timeout=20_000)
    await ann.wait_for_selector("#notices .notice")
    assert await ann.inner_text("#record") == "Record" and await ann.is_hidden("#rec-status")
    pool.capacity = 2

    bob = await enter(await people(video=fake_media["blue"]), meeting["roomUrl"], "Bob")
    assert await bob.is_hidden("#record") and await bob.is_hidden("#rec-prompt")  # hosts only
    for page in (ann, bob):
        await wait_media(page, "s.totals.framesDecoded > 0 && s.totals.audioPacketsReceived > 0")
    recording_id = await record(ann, [bob], RECORD_SECONDS,
                                during=lambda: asyncio.gather(check_recorder_hidden(ann), check_recorder_hidden(bob)))
    path = tmp_path / "recording.mp4"
    ready = await download(client, recording_id, path)
    assert ready["roomName"] == meeting["roomName"]
    await check_two_tiles(path, tmp_path, PRESSED_FOR[recording_id])
    assert pool.busy == 0  # the recorder's Chromium is gone


async def test_cloud_recording_of_a_group_room_shows_both_people(client: httpx.AsyncClient, server: Any, people: Any,
                                                                 fake_media: dict[str, Path], tmp_path: Path) -> None:
    meeting = await create_meeting(client, roomMode="group",
                                   recording={**CLOUD, "destination": {"provider": "whereby", "fileFormat": "mkv"}})
    ann = await enter(await people(video=fake_media["red"]), meeting["hostRoomUrl"], "Ann")
    bob = await enter(await people(video=fake_media["blue"]), meeting["roomUrl"], "Bob")
    for page in (ann, bob):
        await wait_media(page, "s.totals.framesDecoded > 0 && s.totals.audioPacketsReceived > 0", timeout=45_000)
    assert (await ann.evaluate("window.herewith.getStats()"))["publisher"]  # media goes through Janus
    recording_id = await record(ann, [bob], RECORD_SECONDS, during=lambda: check_recorder_hidden(bob))
    path = tmp_path / "recording.mkv"
    await download(client, recording_id, path)
    await check_two_tiles(path, tmp_path, PRESSED_FOR[recording_id])


async def test_cloud_recording_keeps_sound_and_picture_in_sync(client: httpx.AsyncClient, server: Any, people: Any,
                                                               fake_media: dict[str, Path], tmp_path: Path) -> None:
    """Bob's camera flashes and his microphone beeps at the same instants (fake devices). Chromium's fake
    camera is paced by a timer that falls behind on a loaded machine (its 6 s loop took ~6.1 s here), so the
    source itself drifts apart by tens of milliseconds per loop. So Bob's page also records his own camera and
    microphone as the reference; the recorder's skew is how much later (or earlier) the recording's beeps
    come than its flashes, compared with the same events in the reference: within 100 ms."""
    meeting = await create_meeting(client, recording={**CLOUD, "destination": {"provider": "whereby", "fileFormat": "mkv"}})
    ann = await enter(await people(video=fake_media["red"]), meeting["hostRoomUrl"], "Ann")
    await ann.click("#mic")  # Ann's fake microphone beeps too: silence it
    bob = await enter(await people(video=fake_media["flash"], audio=fake_media["beep"]), meeting["roomUrl"], "Bob")
    for page in (ann, bob):
        await wait_media(page, "s.totals.framesDecoded > 0 && s.totals.audioPacketsReceived > 0")
    await bob.evaluate("""() => {
        const stream = document.querySelector('.tile.self.camera video').srcObject;
        const rec = new MediaRecorder(stream, {mimeType: 'video/webm;codecs=vp8,opus'});
        window.__reference = {rec, chunks: []};
        rec.ondataavailable = e => window.__reference.chunks.push(e.data);
        rec.start(1000);
    }""")
    recording_id = await record(ann, [bob], 14)
    data = await bob.evaluate("""async () => {
        const {rec, chunks} = window.__reference;
        await new Promise(resolve => { rec.onstop = resolve; rec.stop(); });
        const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
        let text = '';
        for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
        return btoa(text);
    }""")
    reference = tmp_path / "reference.webm"
    reference.write_bytes(base64.b64decode(data))
    path = tmp_path / "recording.mkv"
    await download(client, recording_id, path)

    halves = [flash_times(path, "iw/2:ih:0:0"), flash_times(path, "iw/2:ih:iw/2:0")]
    rec_flashes = max(halves, key=len)   # Bob's tile: the half that flashes
    rec_beeps = beep_times(path)
    ref_flashes, ref_beeps = flash_times(reference, "iw:ih:0:0"), beep_times(reference)
    video_shift, video_pairs = align(rec_flashes, ref_flashes)
    audio_shift, audio_pairs = align(rec_beeps, ref_beeps)
    skew = audio_shift - video_shift
    print(f"recording: flashes {[round(t, 3) for t in rec_flashes]} beeps {[round(t, 3) for t in rec_beeps]}")
    print(f"reference: flashes {[round(t, 3) for t in ref_flashes]} beeps {[round(t, 3) for t in ref_beeps]}")
    print(f"shift video {video_shift * 1000:.0f} ms ({len(video_pairs)} flashes), audio {audio_shift * 1000:.0f} ms "
          f"({len(audio_pairs)} beeps): audio later than video by {skew * 1000:+.0f} ms")
    assert len(video_pairs) >= 5 and len(audio_pairs) >= 5, (video_pairs, audio_pairs)
    assert abs(skew) <= 0.100, skew


async def test_local_recording_downloads_a_webm(client: httpx.AsyncClient, people: Any, fake_media: dict[str, Path],
                                                tmp_path: Path) -> None:
    meeting = await create_meeting(client, recording={"type": "local", "destination": None, "startTrigger": "prompt"})
    ann = await enter(await people(video=fake_media["red"]), meeting["hostRoomUrl"], "Ann")
    await ann.wait_for_selector("#rec-prompt[open]")  # asked on joining; not now
    await ann.click("#rec-prompt-later")
    await ann.wait_for_selector("#rec-prompt", state="hidden")
    assert await ann.is_hidden("#rec-status")
    bob = await enter(await people(video=fake_media["blue"]), meeting["roomUrl"], "Bob")
    assert await bob.is_hidden("#record")
    for page in (ann, bob):
        await wait_media(page, "s.totals.framesDecoded > 0 && s.totals.audioPacketsReceived > 0")

    await ann.click("#record")
    started = time.monotonic()
    await ann.wait_for_selector("#rec-status:not([hidden])")
    assert await ann.inner_text("#rec-status") == "Recording (this browser)"
    assert await ann.inner_text("#record") == "Stop recording"
    assert await bob.is_hidden("#rec-status")  # a local recording is this browser's own
    await asyncio.sleep(5.5)
    # Bob shares his screen: it takes the large place, the cameras move to a strip on the right
    await bob.click("#screen")
    await ann.wait_for_selector(".tile.screen.large", timeout=20_000)
    widths = await ann.evaluate("[...document.querySelectorAll('#grid .tile')].map(t => [t.classList.contains('screen'), t.offsetWidth])")
    screen_w = max(w for is_screen, w in widths if is_screen)
    assert all(w * 2 < screen_w for is_screen, w in widths if not is_screen), widths
    await asyncio.sleep(max(2.0, 9.5 - (time.monotonic() - started)))
    async with ann.expect_download() as info:
        await ann.click("#record")
    got = await info.value
    assert got.suggested_filename.endswith(".webm") and meeting["roomName"].strip("/") in got.suggested_filename
    path = tmp_path / "local.webm"
    await got.save_as(path)
    assert await ann.is_hidden("#rec-status") and await ann.is_visible("#rec-download")

    # MediaRecorder's WebM has no duration in its header: copy it into Matroska with an index to measure it
    indexed = tmp_path / "local.mkv"
    _ffmpeg("-i", str(path), "-c", "copy", str(indexed))
    info = probe(indexed)
    duration = float(info["format"]["duration"])
    assert abs(duration - 9.5) <= 2 and any(s["codec_type"] == "audio" for s in info["streams"]), info
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (1280, 720), info
    both = colour_shares(frame_at(indexed, 3.0, tmp_path / "before-share.png"))
    assert both["red"] > 0.05 and both["blue"] > 0.05, both
    end = frame_at(indexed, duration - 0.4, tmp_path / "sharing.png")
    strip = colour_shares(end.crop((1000, 0, 1280, 720)))  # the right strip holds both cameras
    assert strip["red"] > 0.05 and strip["blue"] > 0.05, strip
    listed = (await client.get("/recordings")).json()
    assert listed["results"] == []  # nothing was uploaded


async def test_a_recorder_killed_mid_recording_is_restarted_and_the_file_has_both_parts(
        client: httpx.AsyncClient, server: Any, people: Any, fake_media: dict[str, Path], tmp_path: Path) -> None:
    """kill -9 of the recorder's Chromium: the pool launches another, the page joins again and its new WebM
    documents go to the next file parts; the finished file holds the time before and after the crash."""
    meeting = await create_meeting(client, recording={**CLOUD, "destination": {"provider": "whereby", "fileFormat": "mkv"}})
    ann = await enter(await people(video=fake_media["red"]), meeting["hostRoomUrl"], "Ann")
    bob = await enter(await people(video=fake_media["blue"]), meeting["roomUrl"], "Bob")
    for page in (ann, bob):
        await wait_media(page, "s.totals.framesDecoded > 0")
    pool = server.services.recordings.launcher

    async def crash() -> None:
        rid = await ann.evaluate("window.herewith.recording.cloud.recordingId")
        await asyncio.sleep(6)
        [pid] = pool.pids(rid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not (pool.pids(rid) not in ([], [pid]) and pool.phase(rid) == "recording"):
            assert time.monotonic() < deadline, (pool.pids(rid), pool.phase(rid))
            await asyncio.sleep(0.2)

    recording_id = await record(ann, [bob], 16, during=crash)
    path = tmp_path / "recording.mkv"
    await download(client, recording_id, path)
    duration = float(probe(path)["format"]["duration"])
    assert 11 <= duration <= 18, duration  # both parts, less the seconds the restart took
    shares = colour_shares(frame_at(path, duration - 2, tmp_path / "after.png"))
    assert shares["red"] > 0.05 and shares["blue"] > 0.05, shares  # after the restart: both people again
    assert pool.busy == 0
