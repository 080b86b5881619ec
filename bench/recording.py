"""Recording benchmark: what the cloud recorder costs for a 4-participant room at 1280x720.

A ``herewith serve`` child (its own Janus and its Chromium recorder pool) hosts a ``roomMode: group`` meeting
with cloud recording. Four aiortc participants (tests/media/sfu_client.py) publish pre-encoded media through
Janus: 640x360 VP8 at 25 fps (ffmpeg testsrc2, a different hue each, a keyframe a second) and Opus at 48 kHz
(a tone each), read from WebM files and sent without re-encoding, so the publishers cost almost nothing and the
machine's two cores are left to the recorder. The first participant is the host and sends ``recording_start``;
the server's pool launches its headless Chromium, which decodes the four streams, draws the grid into a
1280x720 canvas at 25 fps, mixes the audio, records the composite (MediaRecorder) plus one audio file per
participant, and streams it all to the ingest socket.

Measured over ``--seconds`` of steady recording (from the ``recording`` state on):
* CPU of the recorder: utime+stime of its Chromium process tree (browser, zygotes, renderer, GPU and utility
  processes; found by the recorder's profile directory), in cores; per process type too;
* memory of that tree: the sum of RSS (counts shared pages in each process) and of PSS (shares them out), peak;
* the composite file: video frames and their time span -> achieved fps, frames dropped against span x 25, and
  the speed as a multiple of real time: frames / (span x 25) (a live encoder that cannot keep up drops frames
  rather than running late; 1.0 = every frame made).
Target: real time with <= 1.0 core.

``--encoders`` also runs the isolated encoder check that chose the composite's codec: a 1280x720 canvas redrawn
25 times a second, recorded by MediaRecorder with H.264 and with VP8 in one headless Chromium; frames kept and
cores used.

Run inside the test network namespace (WebRTC on 127.0.0.2, Janus needs the veth):

    scripts/netns.sh up
    ip netns exec herewith-test .venv/bin/python bench/recording.py [--seconds 30] [--encoders]

Prints the figures and writes bench/results/recording.json (machine, date, load average, parameters, figures).
The machine may be shared: the load average before and after is recorded with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import fractions
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aioice.ice  # noqa: E402

ICE_ADDR = os.environ.get("HEREWITH_ICE_ADDR", "127.0.0.2")
aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: [ICE_ADDR]  # loopback-only ICE

import av  # noqa: E402
import aiortc.rtcrtpreceiver as rtcrtpreceiver  # noqa: E402
import httpx  # noqa: E402
from aiortc import MediaStreamTrack, RTCPeerConnection  # noqa: E402

from herewith.config import Settings  # noqa: E402
from tests.media.peers import NO_ICE_SERVERS  # noqa: E402
from tests.media.sfu_client import SfuClient  # noqa: E402
from tests.support.servers import ProcessServer, create_org_key  # noqa: E402

FPS = 25
PARTICIPANTS = 4
HZ = os.sysconf("SC_CLK_TCK")
_get_decoder = rtcrtpreceiver.get_decoder


class _FirstFrameDecoder:
    """The publishers also receive each other through Janus: decode only the first frame of each stream (a
    Python decode of 12 streams would take the CPU the recorder is measured on), then repeat it."""

    def __init__(self, codec: object) -> None:
        self.inner = _get_decoder(codec)
        self.last: list[object] = []

    def decode(self, encoded_frame: object) -> list[object]:
        if not self.last:
            self.last = self.inner.decode(encoded_frame)[-1:]
        return list(self.last)


rtcrtpreceiver.get_decoder = _FirstFrameDecoder


# ------------------------------------------------------------------------------------------ publishers
def make_media(directory: Path, index: int, seconds: int = 10) -> Path:
    """``seconds`` of 640x360 VP8 (25 fps, a keyframe a second; testsrc2 turned by a hue per participant) and
    an Opus tone (20 ms packets) as WebM."""
    path = directory / f"participant-{index}.webm"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate={FPS}",
         "-f", "lavfi", "-i", f"sine=frequency={300 + 110 * index}:sample_rate=48000", "-t", str(seconds),
         "-vf", f"hue=h={index * 90}", "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "700k",
         "-g", str(FPS), "-keyint_min", str(FPS), "-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20",
         "-ac", "1", "-f", "webm", str(path)], check=True, timeout=300)
    return path


class EncodedTrack(MediaStreamTrack):
    """Pre-encoded packets of one stream of a WebM file, looped and paced in real time (aiortc packs them into
    RTP without decoding or encoding)."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__()
        self.kind = kind
        with av.open(str(path)) as container:
            stream = next(s for s in container.streams if s.type == kind)
            self.time_base = stream.time_base
            self.packets = [(bytes(p), int(p.pts)) for p in container.demux(stream) if p.size and p.pts is not None]
        first = self.packets[0][1]
        self.packets = [(data, pts - first) for data, pts in self.packets]
        step = self.packets[1][1] - self.packets[0][1]
        self.loop_ticks = self.packets[-1][1] + step
        self.i = 0
        self.loops = 0
        self.started: float | None = None

    async def recv(self) -> av.Packet:
        if self.started is None:
            self.started = time.monotonic()
        data, pts = self.packets[self.i]
        pts += self.loops * self.loop_ticks
        self.i += 1
        if self.i == len(self.packets):
            self.i, self.loops = 0, self.loops + 1
        due = self.started + float(pts * self.time_base)
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        packet = av.Packet(data)
        packet.pts = pts
        packet.time_base = fractions.Fraction(self.time_base)
        return packet


class Participant(SfuClient):
    """A group-room participant that publishes its WebM's video and audio as they are."""

    def __init__(self, *args: Any, media: Path, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.media = media

    async def publish(self, track: MediaStreamTrack | None = None) -> None:
        async with self._lock:
            if self.pub_pc is not None:
                await self.pub_pc.close()
            pc = self.pub_pc = RTCPeerConnection(NO_ICE_SERVERS)
            pc.addTransceiver(EncodedTrack(self.media, "audio"), direction="sendonly")
            pc.addTransceiver(EncodedTrack(self.media, "video"), direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            await self.send({"type": "sfu_publish", "sdp": pc.localDescription.sdp})


# ------------------------------------------------------------------------------------------- processes
def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of ``pid``, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / HZ


def recorder_tree(recorders_dir: Path, pipe_only: bool = True) -> dict[int, str]:
    """pid -> process type (browser, renderer, gpu-process, utility, zygote...) of every process of the
    Chromium whose profile is under ``recorders_dir`` (the recorder's are driven over a DevTools pipe)."""
    parents: dict[int, int] = {}
    roots = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        st = _stat(pid)
        if st is None:
            continue
        parents[pid] = st[0]
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.startswith(f"--user-data-dir={recorders_dir}".encode()) for a in cmd) and (
                b"--remote-debugging-pipe" in cmd or not pipe_only) and not any(a.startswith(b"--type=") for a in cmd):
            roots.append(pid)
    tree: dict[int, str] = {}
    for root in roots:
        todo = [root]
        while todo:
            pid = todo.pop()
            tree[pid] = _kind(pid)
            todo.extend(c for c, p in parents.items() if p == pid and c not in tree)
    return tree


def _kind(pid: int) -> str:
    """Chromium's process type from its command line (Chromium rewrites its argv into one space-separated
    string, so split on NULs and spaces)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").split()
    except OSError:
        return "gone"
    kind = next((a[len("--type="):] for a in args if a.startswith("--type=")), None)
    if kind is None:
        return "browser" if "--remote-debugging-pipe" in args and "--renderer-client-id" not in " ".join(args) else "other"
    if kind == "utility":
        sub = next((a.split("=", 1)[1] for a in args if a.startswith("--utility-sub-type=")), "")
        return f"utility:{sub.rsplit('.', 1)[-1]}" if sub else kind
    return kind


def cpu_by_pid(pids: dict[int, str]) -> dict[int, float]:
    out = {}
    for pid in pids:
        st = _stat(pid)
        if st is not None:
            out[pid] = st[1]
    return out


def memory_mib(pids: dict[int, str]) -> tuple[float, float, dict[str, float]]:
    """(sum of RSS, sum of PSS, PSS by process type and by kind of page: ``renderer``, ``renderer.anon``,
    ``renderer.file``, ``renderer.shmem``...) of ``pids`` in MiB."""
    rss = pss = 0
    by_kind: dict[str, float] = {}
    parts = {"Pss_Anon:": "anon", "Pss_File:": "file", "Pss_Shmem:": "shmem"}
    for pid, kind in pids.items():
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                key, value = line.split()[0], line.split()[1:2]
                if key == "Rss:":
                    rss += int(value[0])
                elif key == "Pss:":
                    pss += int(value[0])
                    by_kind[kind] = by_kind.get(kind, 0.0) + int(value[0]) / 1024
                elif key in parts:
                    name = f"{kind}.{parts[key]}"
                    by_kind[name] = by_kind.get(name, 0.0) + int(value[0]) / 1024
        except (OSError, IndexError, ValueError):
            continue
    return rss / 1024, pss / 1024, by_kind


# ---------------------------------------------------------------------------------------------- files
def video_packet_times(path: Path) -> list[float]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True, timeout=120).stdout
    return sorted(float(x) for x in out.split() if x.strip() and x.strip() != "N/A")


def codec_of(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=codec_name,width,height", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return (json.loads(out).get("streams") or [{}])[0]


# ------------------------------------------------------------------------------------------ the room run
async def run_room(seconds: float, work: Path, rounds: int = 3) -> dict[str, Any]:
    """``rounds`` recordings of the same 4-person room, one after the other (a fresh recorder each)."""
    data_dir = work / "data"
    settings = Settings(data_dir=data_dir, secret_key="bench-secret-key-0123456789abcdef")
    org = await create_org_key(settings, "bench")
    env = {"HEREWITH_DATA_DIR": str(data_dir), "HEREWITH_SECRET_KEY": settings.secret_key or "",
           "HEREWITH_JANUS": "local", "HEREWITH_JANUS_ICE_ENFORCE_LIST": "v0", "HEREWITH_JANUS_RTP_PORTS": "45000-49999",
           "HEREWITH_JANUS_ROOM_BITRATE": "1000000", "HEREWITH_RECORDING_POLL_SECONDS": "0.5",
           "HEREWITH_RECORDERS_PER_NODE": "1", "HEREWITH_LOG_LEVEL": "info"}
    server = ProcessServer(env=env, log_path=work / "server.log").start()
    media = [make_media(work, i) for i in range(PARTICIPANTS)]
    people: list[Participant] = []
    results: list[dict[str, Any]] = []
    try:
        async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=org.headers, timeout=30) as api:
            r = await api.post("/meetings", json={
                "endDate": "2099-01-01T00:00:00.000Z", "roomMode": "group", "fields": ["hostRoomUrl"],
                "recording": {"type": "cloud", "startTrigger": "none",
                              "destination": {"provider": "whereby", "fileFormat": "mkv"}}})
            r.raise_for_status()
            meeting = r.json()
            from urllib.parse import parse_qs, urlparse

            host_key = parse_qs(urlparse(meeting["hostRoomUrl"]).query)["roomKey"][0]
            ws_url = server.base_url.replace("http://", "ws://")
            for i in range(PARTICIPANTS):
                p = Participant(ws_url, meeting["roomName"], display=f"Person {i + 1}",
                                room_key=host_key if i == 0 else None, media=media[i])
                await p.join(timeout=60)
                people.append(p)
            ids = {p.id for p in people if p.id}
            await people[0].wait_frames_from(ids - {people[0].id}, minimum=5, timeout=60)

            for _ in range(rounds):
                results.append(await _record_once(people[0], api, data_dir, seconds))
    finally:
        for p in people:
            await p.close()
        server.stop()
    med = lambda get: sorted(get(r) for r in results)[len(results) // 2]  # noqa: E731
    return {
        "rounds": results,
        "median": {
            "recorder_cores": med(lambda r: r["recorder"]["cores"]),
            "pss_mib_peak": med(lambda r: r["recorder"]["pss_mib_peak"]),
            "fps": med(lambda r: r["composite"]["fps"]),
            "dropped_pct": med(lambda r: r["composite"]["dropped_pct"] or 0.0),
            "speed_x_realtime": med(lambda r: r["composite"]["speed_x_realtime"]),
        },
    }


async def _record_once(host: Participant, api: httpx.AsyncClient, data_dir: Path, seconds: float) -> dict[str, Any]:
    """One recording: start, measure ``seconds`` of steady state, stop, wait for the file, analyse it."""
    mark = len(host.messages)
    await host.send({"type": "recording_start"})
    t_ask = time.monotonic()
    while True:
        m = await host.wait_message("recording", timeout=90, start=mark)
        mark = host.messages.index(m) + 1
        if m["state"] in ("failed", "unavailable", "stopped"):
            raise RuntimeError(f"recording did not start: {m}")
        if m["state"] == "recording":
            break
    recording_id = m["recordingId"]
    t_recording = time.monotonic()
    await asyncio.sleep(3)  # past the start: decoders and encoder settled
    tree = recorder_tree(data_dir / "recorders")
    cpu0, t0 = cpu_by_pid(tree), time.monotonic()
    load0 = os.getloadavg()
    peak_rss = peak_pss = 0.0
    pss_by_kind: dict[str, float] = {}
    pss_series: list[float] = []
    while time.monotonic() - t0 < seconds:
        await asyncio.sleep(1.0)
        tree.update(recorder_tree(data_dir / "recorders"))
        rss, pss, kinds = memory_mib(tree)
        pss_series.append(round(pss, 1))
        if pss > peak_pss:
            pss_by_kind = kinds
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
    cpu1, t1 = cpu_by_pid(tree), time.monotonic()
    load1 = os.getloadavg()
    by_kind: dict[str, float] = {}
    for pid, kind in tree.items():
        if pid in cpu0 and pid in cpu1:  # a process that came or went in the window is left out
            by_kind[kind] = by_kind.get(kind, 0.0) + max(0.0, cpu1[pid] - cpu0[pid])
    window = t1 - t0
    mark = len(host.messages)
    await host.send({"type": "recording_stop"})
    t_stop = time.monotonic()
    while True:
        m = await host.wait_message("recording", timeout=60, start=mark)
        mark = host.messages.index(m) + 1
        if m["state"] in ("stopped", "failed"):
            break
    got: dict[str, Any] = {}
    for _ in range(240):
        got = (await api.get(f"/recordings/{recording_id}")).json()
        if got.get("state") in ("ready", "failed"):
            break
        await asyncio.sleep(0.5)

    # the finished file: with fileFormat mkv the finalizer copies the composite's streams (no transcode), so
    # its frames are the ones the recorder made
    folder = data_dir / "recordings" / recording_id
    parts = sorted(folder.glob("*.mkv")) or sorted(folder.glob("composite*.webm"))
    if not parts:
        raise RuntimeError(f"no composite in {folder}: {sorted(p.name for p in folder.rglob('*'))}")
    times = video_packet_times(parts[0])
    span = (times[-1] - times[0] + 1 / FPS) if len(times) > 1 else 0.0
    expected = round(span * FPS)
    cores = sum(by_kind.values()) / window
    # a live encoder that falls behind drops frames, it does not run late: its speed is the share of the
    # target frame rate it kept, frames / (span x 25)
    speed = len(times) / (span * FPS) if span else 0.0
    return {
        "start_latency_s": round(t_recording - t_ask, 2),
        "window_s": round(window, 1),
        "load_average_before_after": [round(x, 2) for x in (*load0, *load1)],
        "recorder": {
            "cores": round(cores, 3),
            "cores_by_process": {k: round(v / window, 3) for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])},
            "processes": len(tree),
            "rss_mib_peak_sum": round(peak_rss, 1),
            "pss_mib_peak": round(peak_pss, 1),
            "pss_mib_first_last": [pss_series[0], pss_series[-1]] if pss_series else None,
            "pss_mib_by_process_at_peak": {k: round(v, 1) for k, v in sorted(pss_by_kind.items(), key=lambda kv: -kv[1])
                                           if "." not in k or k.startswith("renderer.")},
        },
        "composite": {
            **codec_of(parts[0]),
            "bytes": parts[0].stat().st_size,
            "frames": len(times),
            "span_s": round(span, 2),
            "fps": round(len(times) / span, 2) if span else 0.0,
            "expected_frames_at_25fps": expected,
            "dropped_frames": max(0, expected - len(times)),
            "dropped_pct": round(100 * max(0, expected - len(times)) / expected, 1) if expected else None,
            "wall_s_recorded": round(t_stop - t_recording, 2),
            "speed_x_realtime": round(speed, 3),
        },
        "participant_audio_files": len([p for p in folder.rglob("*.webm") if not p.name.startswith("composite")]),
        "finished_state": got.get("state"),
    }


# -------------------------------------------------------------------------------------------- encoders
ENCODER_JS = """
([mime]) => {
  const w = 1280, h = 720;
  const c = document.createElement('canvas'); c.width = w; c.height = h; document.body.append(c);
  const ctx = c.getContext('2d', {alpha: false}); let drawn = 0;
  const draw = () => {   // a grid of four moving tiles, like a composite
    ctx.fillStyle = '#111318'; ctx.fillRect(0, 0, w, h);
    for (let i = 0; i < 4; i++) {
      const x = (i % 2) * 640, y = Math.floor(i / 2) * 360;
      ctx.fillStyle = `hsl(${(drawn * 3 + i * 90) % 360},70%,45%)`; ctx.fillRect(x + 4, y + 4, 632, 352);
      ctx.fillStyle = '#fff'; ctx.fillRect(x + (drawn * 7 + i * 50) % 560, y + 140, 80, 80);
    }
    drawn++;
  };
  const timer = setInterval(draw, 40);
  const rec = new MediaRecorder(c.captureStream(), {mimeType: mime, videoBitsPerSecond: 2500000});
  const chunks = []; rec.ondataavailable = e => chunks.push(e.data); rec.start(1000);
  window.__bench = {rec, chunks, timer, drawn: () => drawn};
}
"""
ENCODER_STOP_JS = """
async () => {
  const {rec, chunks, timer} = window.__bench;
  await new Promise(r => { rec.onstop = r; rec.stop(); });
  clearInterval(timer);
  const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
  let s = ''; for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
"""


async def run_encoders(work: Path, rounds: int = 3, seconds: float = 10.0, warmup: float = 3.0) -> list[dict[str, Any]]:
    """Each codec in a fresh Chromium, ``rounds`` times taking turns: ``warmup`` seconds, then frames and CPU
    over ``seconds``; the rounds and their medians."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(rounds):
        for r in await _encoder_round(work, seconds, warmup):
            runs.setdefault(r["mime"], []).append(r)
    out = []
    for mime, rs in runs.items():
        med = lambda key: sorted(r[key] for r in rs)[len(rs) // 2]  # noqa: E731
        out.append({"mime": mime, "size": "1280x720", "target_fps": FPS, "window_s": seconds,
                    "median_recorded_fps": med("recorded_fps"), "median_cores": med("cores"),
                    "rounds": [{k: r[k] for k in ("drawn_fps", "recorded_fps", "cores")} for r in rs]})
    return out


async def _encoder_round(work: Path, seconds: float, warmup: float) -> list[dict[str, Any]]:
    import base64

    from playwright.async_api import async_playwright

    from herewith.media.recorder import CHROMIUM_FLAGS

    results = []
    async with async_playwright() as pw:
        for mime in ("video/webm;codecs=h264", "video/webm;codecs=vp8"):
            profile = Path(tempfile.mkdtemp(prefix="encoder-", dir=work))  # finds this browser's processes
            ctx = await pw.chromium.launch_persistent_context(str(profile), executable_path="/usr/bin/chromium",
                                                              args=CHROMIUM_FLAGS)
            page = ctx.pages[0] if ctx.pages else await ctx.new_page()
            await page.evaluate(ENCODER_JS, [mime])
            await asyncio.sleep(warmup)
            tree = recorder_tree(profile, pipe_only=False)
            cpu0, t0, drawn0 = cpu_by_pid(tree), time.monotonic(), await page.evaluate("window.__bench.drawn()")
            await asyncio.sleep(seconds)
            cpu1, t1, drawn1 = cpu_by_pid(tree), time.monotonic(), await page.evaluate("window.__bench.drawn()")
            data = await page.evaluate(ENCODER_STOP_JS)
            await ctx.close()
            path = work / f"encoder.{mime.rsplit('=', 1)[1]}.webm"
            path.write_bytes(base64.b64decode(data))
            times = video_packet_times(path)
            first = times[0] if times else 0.0
            kept = [t for t in times if warmup <= t - first < warmup + seconds]
            used = sum(cpu1[p] - cpu0[p] for p in tree if p in cpu0 and p in cpu1)
            results.append({"mime": mime, "drawn_fps": round((drawn1 - drawn0) / (t1 - t0), 1),
                            "recorded_fps": round(len(kept) / seconds, 1), "cores": round(used / (t1 - t0), 3)})
    return results


# ------------------------------------------------------------------------------------------------ main
def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    version = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "os": platform.platform(), "python": platform.python_version(), "chromium": version,
            "hostname": platform.node()}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="steady recording window measured per round (s)")
    ap.add_argument("--rounds", type=int, default=3, help="recordings of the room, one after the other")
    ap.add_argument("--encoders", action="store_true", help="also the isolated H.264 vs VP8 canvas encoder check")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "recording.json"))
    args = ap.parse_args()
    if not Path("/sys/class/net/v0").exists():
        sys.exit("run inside the test network namespace: ip netns exec herewith-test .venv/bin/python bench/recording.py")
    for tool in ("ffmpeg", "ffprobe", "janus"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed")
    work = Path(tempfile.mkdtemp(prefix="herewith-bench-recording-"))
    try:
        room = await run_room(args.seconds, work, args.rounds)
        encoders = await run_encoders(work) if args.encoders else None
    except BaseException:
        print(f"failed; the server's log and files are in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    med = room["median"]
    target = {"realtime": med["speed_x_realtime"] >= 0.97, "cores_at_most": 1.0, "cores_ok": med["recorder_cores"] <= 1.0,
              "judged_on": "medians of the rounds"}
    target["met"] = target["realtime"] and target["cores_ok"]
    result = {
        "benchmark": "recording",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "parameters": {
            "room": f"roomMode group (Janus), {PARTICIPANTS} aiortc participants",
            "publishers": f"pre-encoded 640x360 VP8 {FPS} fps (~700 kbit/s, keyframe every second) + Opus 48 kHz mono",
            "composite": f"1280x720 canvas at {FPS} fps, MediaRecorder (the page picks H.264 if available, else VP8), "
                         "2.5 Mbit/s, timeslice 1 s; plus one Opus recorder per participant",
            "window_s": args.seconds,
        },
        "room": room,
        "target": target,
        **({"encoders": encoders} if encoders is not None else {}),
    }
    print(json.dumps(result, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
