"""SFU benchmark: one aiortc publisher and 10, 20, 40 aiortc subscribers through Janus, in one run.

Measures, for each subscriber count N (a fresh set of N subscribers joining together):
* time to first frame per subscriber (subscribe request -> first decoded video frame): median, p90, max;
* CPU of the Janus process (utime+stime from /proc/<pid>/stat) over a steady window, as a fraction of
  one core, and the marginal cost per subscriber against the publisher-only baseline of the same run;
* CPU of this benchmark process (the aiortc peers), for context;
* through Herewith (``proxy_runs``): the same publisher and N subscribers as participants of a ``roomMode:
  group`` meeting of a ``herewith serve`` child process that supervises its own Janus. Every peer speaks
  Herewith's signaling over the WebSocket (tests/media/sfu_client.py; subscribers are viewers, the server
  subscribes them), Herewith holds one Janus session per participant and relays every offer/answer/trickle.
  Measured: Herewith's CPU per subscriber (steady state, and per join during the burst) next to Janus's, and
  time to first frame (WebSocket join -> first decoded frame).

* big rooms (``--mode grid``, written to bench/results/sfu_grid.json): ``--publishers`` (50) cheap publishers
  in one group room (aiortc relaying pre-encoded 320x180 VP8 and Opus without encoding, tests/media/relay.py;
  three of them speaking; spread over ``--publisher-procs`` worker processes whose receivers drop what they get),
  first with publishers only, once per Herewith -> Janus API transport (``--transports http websocket``: a fresh
  server each, same run), then, on the last server, one path after the other, ``--subscribers`` viewers that
  report a 9-tile grid page (``sfu_view``: 9 publishers at 426x240 device pixels) and as many that report nothing
  (today's receive-everything path). Per subscriber: downlink (RTP bytes received) and video streams received
  (frames counted by RTP marker bit after SRTP, or decoded with ``--decode``); Janus CPU and Herewith CPU over
  the window, for each phase.

Run inside the test network namespace (Janus is started by JanusSupervisor with a generated config):

    scripts/netns.sh up
    ip netns exec herewith-test .venv/bin/python bench/sfu.py [--counts 10 20 40] [--window 8] [--mode both]
    ip netns exec herewith-test .venv/bin/python bench/sfu.py --mode grid [--publishers 50] [--subscribers 3]

Prints the figures and writes bench/results/sfu.json (machine, date, parameters, figures).
Subscribers decode frames until their first one, then only count assembled frames (a decode per frame
for 40 peers in one Python process would starve Janus of the machine's CPU and measure aiortc instead).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.media.peers (the aiortc peers the tests use)

import aioice.ice  # noqa: E402

ICE_ADDR = os.environ.get("HEREWITH_ICE_ADDR", "127.0.0.2")
aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: [ICE_ADDR]  # loopback-only ICE

import aiortc  # noqa: E402
import aiortc.rtcrtpreceiver as rtcrtpreceiver  # noqa: E402
from aiortc.contrib.media import MediaPlayer  # noqa: E402

from herewith.media.janus import VIDEOROOM, JanusClient, VideoRoomAdmin  # noqa: E402
from herewith.media.supervisor import JanusSupervisor  # noqa: E402
from tests.media.peers import publish, subscribe  # noqa: E402
from tests.media.sfu_client import SfuClient  # noqa: E402

_get_decoder = rtcrtpreceiver.get_decoder


class _FirstFrameDecoder:
    """Decodes until the first picture comes out, then hands that picture back for each later frame."""

    def __init__(self, codec: object) -> None:
        self.inner = _get_decoder(codec)
        self.last: list[object] = []

    def decode(self, encoded_frame: object) -> list[object]:
        if not self.last:
            self.last = self.inner.decode(encoded_frame)[-1:]
            return list(self.last)
        return list(self.last)


rtcrtpreceiver.get_decoder = _FirstFrameDecoder

# Downlink of an aiortc subscriber: aiortc's inbound-rtp stats have no byte count, so each receiver adds up the RTP
# packets it is handed (payload + padding + the 12-byte fixed header; SRTP, UDP and IP overhead not counted).
_handle_rtp = rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet


COUNT_ONLY = False  # grid mode without --decode: receivers count RTP bytes and video frames, then drop the packet


async def _counting_handle_rtp(self: rtcrtpreceiver.RTCRtpReceiver, packet: object, arrival_time_ms: int) -> None:
    self.bench_bytes = getattr(self, "bench_bytes", 0) + len(packet.payload) + packet.padding_size + 12  # type: ignore[attr-defined]
    if packet.marker and self.track is not None and self.track.kind == "video":  # type: ignore[attr-defined]
        self.bench_frames = getattr(self, "bench_frames", 0) + 1  # type: ignore[attr-defined]  # last packet of a frame
    if not COUNT_ONLY:
        await _handle_rtp(self, packet, arrival_time_ms)


rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet = _counting_handle_rtp  # type: ignore[method-assign]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


async def bytes_sent(pc: aiortc.RTCPeerConnection) -> int:
    stats = await pc.getStats()
    return sum(s.bytesSent for s in stats.values() if s.type == "outbound-rtp")


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def machine() -> dict[str, object]:
    model = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                  if l.startswith("model name")), platform.processor())
    mem = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
    janus = subprocess.run(["janus", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return {"cpu": model, "cores": os.cpu_count(), "mem_gib": round(mem / 1024 / 1024, 1),
            "kernel": platform.release(), "os": platform.platform(), "python": platform.python_version(),
            "janus": janus.strip(), "aiortc": aiortc.__version__, "hostname": platform.node()}


async def steady_cpu(pid: int, window: float) -> tuple[float, float]:
    """(Janus CPU, this process's CPU) over ``window`` seconds, each as a fraction of one core."""
    me = os.getpid()
    j0, m0, t0 = cpu_seconds(pid), cpu_seconds(me), time.perf_counter()
    await asyncio.sleep(window)
    el = time.perf_counter() - t0
    return (cpu_seconds(pid) - j0) / el, (cpu_seconds(me) - m0) / el


async def run(args: argparse.Namespace) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="herewith-bench-janus-"))
    async with JanusSupervisor(workdir, ice_enforce_list=args.iface, debug_level=3) as sup:
        pid = sup.pid
        assert pid is not None
        async with sup.client(timeout=30.0) as client:
            control = await client.create_session()
            rooms = VideoRoomAdmin(await control.attach(VIDEOROOM), sup.admin_key)
            room = 777
            await rooms.create_room(room, secret="bench", publishers=1, bitrate=args.bitrate)  # REMB cap
            pub_session = await client.create_session()
            source = MediaPlayer(f"testsrc=size={args.width}x{args.height}:rate=30", format="lavfi")  # moving picture
            pub = await publish(pub_session, room, display="publisher", track=source.video)
            await asyncio.sleep(2)
            b0, t0 = await bytes_sent(pub.pc), time.perf_counter()
            base_janus, base_self = await steady_cpu(pid, args.window)
            pub_kbps = 8 * (await bytes_sent(pub.pc) - b0) / (time.perf_counter() - t0) / 1000
            print(f"baseline (1 publisher, 0 subscribers): janus {100 * base_janus:.1f}% of a core, "
                  f"bench {100 * base_self:.1f}%", flush=True)
            runs = []
            for n in args.counts:
                runs.append(await measure(client, room, pub.feed_id, pid, n, args, base_janus))
            await pub.pc.close()
            await pub_session.destroy()
            await rooms.destroy_room(room, secret="bench")
            await control.destroy()
    return {
        "benchmark": "sfu",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "parameters": {"publisher_video": f"{args.width}x{args.height} VP8 30 fps, ffmpeg testsrc via aiortc MediaPlayer", "counts": args.counts,
                       "room_bitrate_bps": args.bitrate, "window_s": args.window, "settle_s": args.settle, "ice": f"host {ICE_ADDR} via netns veth",
                       "subscribers": "aiortc, one Janus session each, all of a count joining together",
                       "janus_config": "generated by herewith.media.supervisor.JanusSupervisor, debug_level 3"},
        "baseline_publisher_only": {"janus_cpu_cores": round(base_janus, 4), "bench_cpu_cores": round(base_self, 4),
                                    "publisher_video_kbps": round(pub_kbps)},
        "runs": runs,
        "units": {"*_cpu_cores": "CPU seconds per wall second (1.0 = one core busy)",
                  "janus_cpu_ms_per_subscriber_per_s": "marginal Janus CPU milliseconds per subscriber per second, "
                                                       "(janus(N) - janus(0)) / N",
                  "ttff_*_ms": "subscribe request -> first decoded video frame, milliseconds",
                  "signaled_median_ms": "subscribe request -> Janus accepted our SDP answer ('start')",
                  "connected_*_ms": "subscribe request -> ICE+DTLS connected (aiortc connectionState)"},
    }


async def measure(client: JanusClient, room: int, feed: int, pid: int, n: int,
                  args: argparse.Namespace, base_janus: float) -> dict[str, object]:
    sessions = [await client.create_session() for _ in range(n)]
    subs = await asyncio.gather(*(subscribe(s, room, feed) for s in sessions))
    try:
        await asyncio.wait_for(asyncio.gather(*(s.first_frame.wait() for s in subs)), 60)
    except TimeoutError:
        pass
    ttff = [1000 * s.time_to_first_frame for s in subs if s.time_to_first_frame is not None]
    signaled = [1000 * (s.answered_at - s.started) for s in subs if s.answered_at is not None]
    connected = [1000 * (s.connected_at - s.started) for s in subs if s.connected_at is not None]
    await asyncio.sleep(args.settle)
    f0 = [s.frames for s in subs]
    janus_cpu, self_cpu = await steady_cpu(pid, args.window)
    fps = [(s.frames - a) / args.window for s, a in zip(subs, f0, strict=True)]
    result = {
        "subscribers": n,
        "received_first_frame": len(ttff),
        "ttff_median_ms": round(statistics.median(ttff)) if ttff else None,
        "ttff_p90_ms": round(percentile(ttff, 0.9)) if ttff else None,
        "ttff_max_ms": round(max(ttff)) if ttff else None,
        "signaled_median_ms": round(statistics.median(signaled)) if signaled else None,
        "connected_median_ms": round(statistics.median(connected)) if connected else None,
        "connected_p90_ms": round(percentile(connected, 0.9)) if connected else None,
        "janus_cpu_cores": round(janus_cpu, 4),
        "janus_cpu_ms_per_subscriber_per_s": round(1000 * (janus_cpu - base_janus) / n, 3),
        "janus_rss_mib": round(rss_mib(pid), 1),
        "bench_cpu_cores": round(self_cpu, 4),
        "fps_per_subscriber_median": round(statistics.median(fps), 1),
        "fps_per_subscriber_min": round(min(fps), 1),
    }
    print(json.dumps(result), flush=True)
    for s in subs:
        await s.pc.close()
    for s in sessions:
        await s.destroy()
    await asyncio.sleep(1)
    return result


# ------------------------------------------------------------------------------ through Herewith's proxy
def child_pids(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out.extend(int(x) for x in text)
    return out


def janus_child(pid: int) -> int | None:
    for child in child_pids(pid):
        try:
            if Path(f"/proc/{child}/comm").read_text().strip() == "janus":
                return child
        except OSError:
            continue
    return None


def _cpu(pids: int | list[int]) -> float:
    return sum(cpu_seconds(p) for p in pids) if isinstance(pids, list) else cpu_seconds(pids)


async def steady_cpu3(pids: dict[str, Any], window: float) -> dict[str, float]:
    """CPU of each process in ``pids`` (name -> pid, or a list of pids added up) over ``window`` seconds, as a
    fraction of one core."""
    c0, t0 = {k: _cpu(v) for k, v in pids.items()}, time.perf_counter()
    await asyncio.sleep(window)
    el = time.perf_counter() - t0
    return {k: (_cpu(v) - c0[k]) / el for k, v in pids.items()}


async def run_proxy(args: argparse.Namespace) -> dict[str, object]:
    """One ``herewith serve`` (local Janus), one group meeting, one publisher, then N viewers per step."""
    from urllib.parse import parse_qs, urlparse

    import httpx

    from herewith.config import Settings
    from tests.support.servers import ProcessServer, create_org_key, run_sync

    tmp = Path(tempfile.mkdtemp(prefix="herewith-bench-sfu-"))
    settings = Settings(data_dir=tmp, secret_key="bench-secret-0123456789abcdef")
    org = run_sync(create_org_key(settings, "bench"))
    server = ProcessServer({
        "HEREWITH_DATA_DIR": str(tmp), "HEREWITH_SECRET_KEY": settings.secret_key, "HEREWITH_JANUS": "local",
        "HEREWITH_JANUS_ICE_ENFORCE_LIST": args.iface, "HEREWITH_JANUS_ROOM_BITRATE": str(args.bitrate),
        "HEREWITH_RATELIMIT_ENABLED": "false", "HEREWITH_LOG_LEVEL": "warning", "HEREWITH_BACKGROUND_TASKS": "false",
    }, log_path=tmp / "server.log").start()
    me = os.getpid()
    try:
        hw = server.proc.pid
        deadline = time.monotonic() + 20
        while (janus := janus_child(hw)) is None:
            assert time.monotonic() < deadline, "the server started no Janus"
            await asyncio.sleep(0.1)
        pids = {"herewith": hw, "janus": janus, "bench": me}
        async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=org.headers, timeout=30) as http:
            r = await http.post("/meetings", json={"endDate": "2099-01-01T00:00:00Z", "roomMode": "group",
                                                   "fields": ["viewerRoomUrl"]})
            r.raise_for_status()
            meeting = r.json()
        room = urlparse(meeting["roomUrl"]).path
        viewer_key = parse_qs(urlparse(meeting["viewerRoomUrl"]).query)["roomKey"][0]
        ws_url = server.base_url.replace("http://", "ws://")

        idle = await steady_cpu3(pids, 3.0)  # no participant yet (Janus and Herewith idle)
        source = MediaPlayer(f"testsrc=size={args.width}x{args.height}:rate=30", format="lavfi")
        pub = SfuClient(ws_url, room, display="publisher", publish=False)
        await pub.join()
        await pub.publish(source.video)
        await pub.wait_message("sfu_published", timeout=30)
        await asyncio.sleep(2)
        base = await steady_cpu3(pids, args.window)
        print(f"proxy baseline (1 publisher): herewith {100 * base['herewith']:.1f}%, janus {100 * base['janus']:.1f}% "
              f"of a core (idle before: herewith {100 * idle['herewith']:.1f}%, janus {100 * idle['janus']:.1f}%)",
              flush=True)
        runs = []
        for n in args.counts:
            runs.append(await measure_proxy(ws_url, room, viewer_key, pub.id or "", pids, n, args, base))
        await pub.close()
    finally:
        server.stop()
    hw_steady = {str(r["subscribers"]): r["herewith_cpu_ms_per_subscriber_per_s"] for r in runs}
    hw_join = {str(r["subscribers"]): r["herewith_cpu_ms_per_join"] for r in runs}
    return {
        "proxy_parameters": {
            "server": "herewith serve (child process, SQLite, rate limits off) with HEREWITH_JANUS=local",
            "publisher": "SfuClient (tests/media/sfu_client.py) sending the same testsrc track",
            "subscribers": "SfuClient viewers (WebSocket join with the viewer room key; the server subscribes them), "
                           "one Herewith-held Janus session each, all of a count joining together",
        },
        "proxy_idle": {k + "_cpu_cores": round(v, 4) for k, v in idle.items()},
        "proxy_baseline_publisher_only": {k + "_cpu_cores": round(v, 4) for k, v in base.items()},
        "proxy_runs": runs,
        "herewith_cpu_per_subscriber": {"steady_ms_per_s": hw_steady, "join_ms": hw_join},
        "herewith_cpu_note": "steady: (herewith(N) - herewith(1 publisher)) / N over the window, CPU milliseconds per "
                             "second per subscriber (media bypasses Herewith: what remains is its Janus long polls, "
                             "keepalives and WebSocket pings); join: Herewith CPU spent from the first WebSocket "
                             "connect until every subscriber decoded a frame, divided by N (signaling relay, Janus "
                             "API calls, SDP handling)",
    }


async def measure_proxy(ws_url: str, room: str, viewer_key: str, publisher: str, pids: dict[str, int], n: int,
                        args: argparse.Namespace, base: dict[str, float]) -> dict[str, object]:
    subs = [SfuClient(ws_url, room, display=f"sub-{n}-{i}", room_key=viewer_key, publish=False) for i in range(n)]
    c0 = {k: cpu_seconds(v) for k, v in pids.items()}
    t0 = time.monotonic()
    joined = await asyncio.gather(*(s.join(timeout=60) for s in subs), return_exceptions=True)
    failed_joins = sum(isinstance(j, BaseException) for j in joined)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(publisher in s.first_frame_at for s in subs):
        await asyncio.sleep(0.05)
    burst = time.monotonic() - t0
    join_cpu = {k: cpu_seconds(v) - c0[k] for k, v in pids.items()}
    ttff = [1000 * (s.first_frame_at[publisher] - t0) for s in subs if publisher in s.first_frame_at]
    offered = [1000 * (next(m["_at"] for m in s.messages if m["type"] == "sfu_offer") - t0)
               for s in subs if any(m["type"] == "sfu_offer" for m in s.messages)]
    await asyncio.sleep(args.settle)
    f0 = [s.frames.get(publisher, 0) for s in subs]
    cpu = await steady_cpu3(pids, args.window)
    fps = [(s.frames.get(publisher, 0) - a) / args.window for s, a in zip(subs, f0, strict=True)]
    result = {
        "subscribers": n,
        "failed_joins": failed_joins,
        "received_first_frame": len(ttff),
        "ttff_median_ms": round(statistics.median(ttff)) if ttff else None,
        "ttff_p90_ms": round(percentile(ttff, 0.9)) if ttff else None,
        "ttff_max_ms": round(max(ttff)) if ttff else None,
        "offer_median_ms": round(statistics.median(offered)) if offered else None,
        "burst_s": round(burst, 2),
        "herewith_cpu_cores": round(cpu["herewith"], 4),
        "herewith_cpu_ms_per_subscriber_per_s": round(1000 * (cpu["herewith"] - base["herewith"]) / n, 3),
        "herewith_cpu_ms_per_join": round(1000 * join_cpu["herewith"] / n, 1),
        "janus_cpu_cores": round(cpu["janus"], 4),
        "janus_cpu_ms_per_subscriber_per_s": round(1000 * (cpu["janus"] - base["janus"]) / n, 3),
        "janus_cpu_ms_per_join": round(1000 * join_cpu["janus"] / n, 1),
        "janus_rss_mib": round(rss_mib(pids["janus"]), 1),
        "herewith_rss_mib": round(rss_mib(pids["herewith"]), 1),
        "bench_cpu_cores": round(cpu["bench"], 4),
        "fps_per_subscriber_median": round(statistics.median(fps), 1),
        "fps_per_subscriber_min": round(min(fps), 1),
    }
    print("proxy " + json.dumps(result), flush=True)
    await asyncio.gather(*(s.close() for s in subs), return_exceptions=True)
    await asyncio.sleep(2)
    return result


# ------------------------------------------------------------------------------------------- big rooms
def rtp_bytes(client: SfuClient) -> int:
    pc = client.sub_pc
    return sum(getattr(t.receiver, "bench_bytes", 0) for t in pc.getTransceivers()) if pc is not None else 0


def video_frames(client: SfuClient) -> dict[str, int]:
    """Video frames received per publisher: decoded ones (``SfuClient.frames``) with ``--decode``, else frames
    whose last RTP packet (marker bit) arrived, counted before aiortc's jitter buffer."""
    if not COUNT_ONLY:
        return dict(client.frames)
    out: dict[str, int] = {}
    pc = client.sub_pc
    for t in pc.getTransceivers() if pc is not None else []:
        owner = client.mid_owner.get(t.mid or "")
        if owner and t.receiver.track is not None and t.receiver.track.kind == "video":
            out[owner] = out.get(owner, 0) + getattr(t.receiver, "bench_frames", 0)
    return {k: v for k, v in out.items() if v}


async def _drop_rtp(self: rtcrtpreceiver.RTCRtpReceiver, packet: object, arrival_time_ms: int) -> None:
    """A publisher process's receivers: count the RTP packet (after SRTP) and drop it. A publisher receives the
    loudest three's audio as a browser would (Janus forwards it all the same), but aiortc's jitter buffer and one
    decoder thread per received stream cost more than everything the publisher sends (py-spy: 3 x 50 packets/s
    received against 17 + ~15 sent)."""
    self.bench_bytes = getattr(self, "bench_bytes", 0) + 1  # type: ignore[attr-defined]


def publisher_worker(conn: Any, ws_url: str, room: str, names: list[str], video: str, silence: str) -> None:
    """A process of relay publishers (``multiprocessing`` target): joins ``names``, answers ``("ready", {name:
    participant id})``, then obeys ``("speak", [names])`` and ``("stop",)``."""
    rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet = _drop_rtp  # type: ignore[method-assign]
    asyncio.run(_publishers(conn, ws_url, room, names, Path(video), Path(silence)))


async def _publishers(conn: Any, ws_url: str, room: str, names: list[str], video: Path, silence: Path) -> None:
    from tests.media.relay import RelayPublisher

    pubs = [RelayPublisher(ws_url, room, display=n, video=video, silence=silence) for n in names]
    try:
        for i in range(0, len(pubs), 5):
            await asyncio.gather(*(p.join(timeout=120) for p in pubs[i:i + 5]))
        await asyncio.gather(*(p.wait_message("sfu_published", timeout=120) for p in pubs))
        conn.send(("ready", {p.display: p.id for p in pubs}))
        while True:
            cmd = await asyncio.to_thread(conn.recv)
            if cmd[0] == "speak":
                for p in pubs:
                    if p.display in cmd[1]:
                        p.speak()
            elif cmd[0] == "stop":
                break
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the run
        conn.send(("error", repr(exc)))
    finally:
        await asyncio.gather(*(p.close() for p in pubs), return_exceptions=True)


class PublisherProcesses:
    """``n`` relay publishers (``pub-00`` ...) spread round-robin over ``procs`` worker processes."""

    def __init__(self, ws_url: str, room: str, n: int, procs: int, video: Path, silence: Path) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # not fork: this process runs threads (aiortc, the loop)
        self.names = [f"pub-{i:02d}" for i in range(n)]
        self.ids: dict[str, str] = {}
        self.workers = []
        for k in range(procs):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=publisher_worker, daemon=True,
                               args=(child, ws_url, room, self.names[k::procs], str(video), str(silence)))
            proc.start()
            self.workers.append((proc, parent))

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc, _ in self.workers if proc.pid is not None]

    async def ready(self, timeout: float = 600) -> None:
        for proc, conn in self.workers:
            if not await asyncio.to_thread(conn.poll, timeout):
                raise TimeoutError(f"publisher process {proc.pid} not ready in {timeout} s")
            kind, value = conn.recv()
            if kind != "ready":
                raise RuntimeError(f"publisher process {proc.pid}: {value}")
            self.ids.update(value)

    def speak(self, names: list[str]) -> None:
        for _, conn in self.workers:
            conn.send(("speak", names))

    async def stop(self) -> None:
        for proc, conn in self.workers:
            with contextlib.suppress(OSError):
                conn.send(("stop",))
        for proc, _ in self.workers:
            await asyncio.to_thread(proc.join, 20)
            if proc.is_alive():
                proc.kill()


async def start_room(args: argparse.Namespace, transport: str, tmp: Path) -> tuple[Any, dict[str, Any], str, str]:
    """A ``herewith serve`` child (its own Janus over ``transport``) and a group meeting: (server, pids, room,
    viewer key)."""
    from urllib.parse import parse_qs, urlparse

    import httpx

    from herewith.config import Settings
    from tests.support.servers import ProcessServer, create_org_key, run_sync

    data = tmp / f"data-{transport}"
    settings = Settings(data_dir=data, secret_key="bench-secret-0123456789abcdef")
    org = run_sync(create_org_key(settings, "bench"))
    server = ProcessServer({
        "HEREWITH_DATA_DIR": str(data), "HEREWITH_SECRET_KEY": settings.secret_key, "HEREWITH_JANUS": "local",
        "HEREWITH_JANUS_TRANSPORT": transport, "HEREWITH_JANUS_ICE_ENFORCE_LIST": args.iface,
        "HEREWITH_RATELIMIT_ENABLED": "false", "HEREWITH_LOG_LEVEL": "warning", "HEREWITH_BACKGROUND_TASKS": "false",
    }, log_path=data.with_suffix(".log"))
    await asyncio.to_thread(server.start, 120)
    hw = server.proc.pid
    deadline = time.monotonic() + 20
    while (janus := janus_child(hw)) is None:
        assert time.monotonic() < deadline, "the server started no Janus"
        await asyncio.sleep(0.1)
    async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=org.headers, timeout=30) as http:
        r = await http.post("/meetings", json={"endDate": "2099-01-01T00:00:00Z", "roomMode": "group",
                                               "fields": ["viewerRoomUrl"]})
        r.raise_for_status()
        meeting = r.json()
    room = urlparse(meeting["roomUrl"]).path
    viewer_key = parse_qs(urlparse(meeting["viewerRoomUrl"]).query)["roomKey"][0]
    return server, {"herewith": hw, "janus": janus}, room, viewer_key


async def publishers_phase(args: argparse.Namespace, transport: str, tmp: Path, video: Path, silence: Path,
                           *, keep: bool) -> tuple[dict[str, float], Any]:
    """Start a server over ``transport``, fill its room with the publishers (3 speaking), measure publishers only.
    Returns the CPU figures and, with ``keep``, ``(server, pids, room, viewer_key, publishers)`` still running."""
    server, pids, room, viewer_key = await start_room(args, transport, tmp)
    ws_url = server.base_url.replace("http://", "ws://")
    pubs = PublisherProcesses(ws_url, room, args.publishers, args.publisher_procs, video, silence)
    try:
        t0 = time.monotonic()
        await pubs.ready()
        pubs.speak(pubs.names[:3])  # three speakers: the audio a grid page gets
        print(f"[{transport}] {args.publishers} publishers in {len(pubs.workers)} processes {pubs.pids} publishing after "
              f"{time.monotonic() - t0:.1f} s", flush=True)
        await asyncio.sleep(args.settle + 2)
        all_pids = {**pids, "bench": [os.getpid(), *pubs.pids]}
        cpu = await steady_cpu3(all_pids, args.window)
        cpu["publisher_processes"] = len(pubs.workers)
        print(f"[{transport}] publishers only: {json.dumps({k: round(v, 3) for k, v in cpu.items()})}", flush=True)
    except BaseException:
        await pubs.stop()
        await asyncio.to_thread(server.stop)
        raise
    if keep:
        return cpu, (server, all_pids, room, viewer_key, pubs)
    await pubs.stop()
    await asyncio.to_thread(server.stop)
    return cpu, None


async def run_grid(args: argparse.Namespace) -> dict[str, object]:
    """``--publishers`` relay publishers in one group room of a ``herewith serve``: publishers only over each
    ``--transports`` (a fresh server each, the last one kept), then grid viewers and receive-everything viewers,
    measured in turn."""
    from tests.media.relay import make_silence, make_video

    load_at_start = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="herewith-bench-grid-"))
    video = make_video(tmp / "video.webm", fps=args.video_fps, bitrate=f"{args.video_kbps}k")
    silence = make_silence(tmp / "silence.webm", frame_ms=args.opus_frame_ms)
    publishers_only: dict[str, dict[str, float]] = {}
    paths = {}
    for n, transport in enumerate(args.transports):
        last = n == len(args.transports) - 1
        cpu, kept = await publishers_phase(args, transport, tmp, video, silence, keep=last)
        publishers_only[transport] = {k if k == "publisher_processes" else k + "_cpu_cores": round(v, 4)
                                      for k, v in cpu.items()}
        if kept is None:
            await asyncio.sleep(3)
            continue
        server, pids, room, viewer_key, pubs = kept
        try:
            ws_url = server.base_url.replace("http://", "ws://")
            shown = [pubs.ids[name] for name in pubs.names[-9:]]  # a page of nine, none of them speaking
            for path in args.paths:
                paths[path] = await measure_grid(ws_url, room, viewer_key, set(pubs.ids.values()), shown, pids,
                                                 path, args)
        finally:
            await pubs.stop()
            await asyncio.to_thread(server.stop)
    return {
        "benchmark": "sfu_grid",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "load_average": os.getloadavg(),
        "load_average_at_start": load_at_start,
        "parameters": {
            "publishers": f"{args.publishers} RelayPublisher (tests/media/relay.py) in {args.publisher_procs} "
                          f"processes: pre-encoded 320x180 VP8 {args.video_fps} fps ~{args.video_kbps} kbit/s + Opus "
                          f"silence in {args.opus_frame_ms} ms packets (speech: 20 ms), sent without encoding; each "
                          "reports an empty grid (audio of the loudest 3 only); 3 of them speak",
            "subscribers": f"{args.subscribers} viewers per path (SfuClient over the WebSocket, aiortc, in the bench's "
                           "main process), measured one path after the other; "
                           + ("they decode every stream" if args.decode else "their receivers count RTP bytes and "
                              "video frames (marker bit) after SRTP and drop the packets (no jitter buffer, no decoder)"),
            "grid": "sfu_view with 9 tiles of 426x240 device pixels (a laptop's 3x3 page)",
            "everything": "no sfu_view: every stream of every publisher (the path before big-room support)",
            "transports": f"Herewith -> Janus API transport of each publishers-only phase (a fresh server each, same "
                          f"run): {', '.join(args.transports)}; the subscriber paths ran on the last",
            "window_s": args.window, "server": "herewith serve with HEREWITH_JANUS=local, SQLite, rate limits off",
        },
        "publishers_only": publishers_only,
        "paths": paths,
        "targets": {"downlink_kbps_max": 3000, "decoded_videos_max": 10, "janus_plus_herewith_cores_max": 1.0},
        "units": {"downlink_kbps": "RTP bytes (header + payload) received per subscriber, kbit/s, median over the "
                                   "subscribers", "decoded_videos": "video streams whose frames arrived during the "
                                   "window, per subscriber (median; frames = RTP marker bits unless --decode)", "*_cpu_cores": "CPU seconds per wall second",
                  "bench_cpu_cores": "the bench's main process and its publisher processes together"},
    }


async def measure_grid(ws_url: str, room: str, viewer_key: str, publishers: set[str], shown: list[str],
                       pids: dict[str, int], path: str, args: argparse.Namespace) -> dict[str, object]:
    subs = [SfuClient(ws_url, room, display=f"{path}-{i}", room_key=viewer_key, publish=False, grid=path == "grid")
            for i in range(args.subscribers)]
    t0 = time.monotonic()
    for s in subs:
        await s.join(timeout=60)
        if path == "grid":
            await s.send({"type": "sfu_view", "tiles": [{"participantId": pid, "source": "camera", "width": 426,
                                                         "height": 240} for pid in shown]})
    expected = set(shown) if path == "grid" else publishers
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(expected <= set(video_frames(s)) for s in subs):
        await asyncio.sleep(0.2)
    ready = time.monotonic() - t0
    seen = [len(expected & set(video_frames(s))) for s in subs]  # expected videos each subscriber had a frame of by then
    await asyncio.sleep(args.settle)
    b0 = [rtp_bytes(s) for s in subs]
    f0 = [video_frames(s) for s in subs]
    cpu = await steady_cpu3(pids, args.window)
    kbps = [8 * (rtp_bytes(s) - b) / args.window / 1000 for s, b in zip(subs, b0, strict=True)]
    decoded = [sum(1 for pid, n in video_frames(s).items() if n > f.get(pid, 0)) for s, f in zip(subs, f0, strict=True)]
    result = {
        "subscribers": len(subs),
        "expected_videos": len(expected),
        "all_expected_videos_after_s": round(ready, 1) if min(seen) == len(expected) else None,
        "videos_seen_by_then": seen,
        "downlink_kbps_median": round(statistics.median(kbps)),
        "downlink_kbps_max": round(max(kbps)),
        "decoded_videos_median": statistics.median(decoded),
        "decoded_videos_max": max(decoded),
        "decoded_videos": decoded,
        "janus_cpu_cores": round(cpu["janus"], 4),
        "herewith_cpu_cores": round(cpu["herewith"], 4),
        "janus_plus_herewith_cores": round(cpu["janus"] + cpu["herewith"], 4),
        "bench_cpu_cores": round(cpu["bench"], 4),
        "janus_rss_mib": round(rss_mib(pids["janus"]), 1),
        "herewith_rss_mib": round(rss_mib(pids["herewith"]), 1),
    }
    print(f"{path}: {json.dumps(result)}", flush=True)
    await asyncio.gather(*(s.close() for s in subs), return_exceptions=True)
    await asyncio.sleep(3)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[10, 20, 40])
    ap.add_argument("--window", type=float, default=8.0, help="CPU measurement window, seconds")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds between first frames and the window")
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--bitrate", type=int, default=300_000, help="room video bitrate cap, bits per second")
    ap.add_argument("--iface", default="v0", help="Janus ice_enforce_list (the netns veth)")
    ap.add_argument("--mode", choices=["direct", "proxy", "both", "grid"], default="both",
                    help="direct: subscribers on Janus's API; proxy: through Herewith's signaling; both (default); "
                         "grid: the big-room scenario (bench/results/sfu_grid.json)")
    ap.add_argument("--publishers", type=int, default=50, help="grid: publishers in the room")
    ap.add_argument("--subscribers", type=int, default=3, help="grid: subscribers measured per path")
    ap.add_argument("--publisher-procs", type=int, default=2, help="grid: processes the publishers are spread over")
    ap.add_argument("--transports", nargs="+", default=["http", "websocket"], choices=["http", "websocket"],
                    help="grid: a publishers-only phase per Herewith->Janus transport; subscribers on the last")
    ap.add_argument("--paths", nargs="*", default=["grid", "everything"], choices=["grid", "everything"],
                    help="grid: subscriber paths measured after the publishers-only phases (none: publishers only)")
    ap.add_argument("--decode", action="store_true",
                    help="grid: subscribers decode (aiortc's jitter buffer and decoder per stream) instead of counting "
                         "RTP bytes and frames as they arrive (a receive-everything subscriber then saturates a core)")
    ap.add_argument("--video-fps", type=int, default=10, help="grid: publishers' VP8 frame rate")
    ap.add_argument("--video-kbps", type=int, default=150, help="grid: publishers' VP8 bitrate")
    ap.add_argument("--opus-frame-ms", type=int, default=60, help="grid: Opus packet duration of the silent audio")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "sfu.json"))
    args = ap.parse_args()
    if args.mode == "grid":
        global COUNT_ONLY
        COUNT_ONLY = not args.decode
        out = Path(args.out).with_name("sfu_grid.json") if args.out.endswith("sfu.json") else Path(args.out)
        text = json.dumps(asyncio.run(run_grid(args)), indent=2)
        print(text)
        out.write_text(text + "\n")
        return
    result = asyncio.run(run(args)) if args.mode != "proxy" else {"benchmark": "sfu", "machine": machine()}
    if args.mode != "direct":
        proxy = asyncio.run(run_proxy(args))
        result.update(proxy)
    text = json.dumps(result, indent=2)
    print(text)
    Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
