"""SFU benchmark: one aiortc publisher and 10, 20, 40 aiortc subscribers through Janus, in one run.

Measures, for each subscriber count N (a fresh set of N subscribers joining together):
* time to first frame per subscriber (subscribe request -> first decoded video frame): median, p90, max;
* CPU of the Janus process (utime+stime from /proc/<pid>/stat) over a steady window, as a fraction of
  one core, and the marginal cost per subscriber against the publisher-only baseline of the same run;
* CPU of this benchmark process (the aiortc peers), for context;
* ``herewith_cpu_per_subscriber``: left null until the control plane proxies the signaling (phase 2).

Run inside the test network namespace (Janus is started by JanusSupervisor with a generated config):

    scripts/netns.sh up
    ip netns exec herewith-test .venv/bin/python bench/sfu.py [--counts 10 20 40] [--window 8]

Prints the figures and writes bench/results/sfu.json (machine, date, parameters, figures).
Subscribers decode frames until their first one, then only count assembled frames (a decode per frame
for 40 peers in one Python process would starve Janus of the machine's CPU and measure aiortc instead).
"""

from __future__ import annotations

import argparse
import asyncio
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
        "herewith_cpu_per_subscriber": None,
        "herewith_cpu_note": "to be measured once the control plane (signaling proxy to Janus) is wired, phase 2",
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[10, 20, 40])
    ap.add_argument("--window", type=float, default=8.0, help="CPU measurement window, seconds")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds between first frames and the window")
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--bitrate", type=int, default=300_000, help="room video bitrate cap, bits per second")
    ap.add_argument("--iface", default="v0", help="Janus ice_enforce_list (the netns veth)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "sfu.json"))
    args = ap.parse_args()
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2)
    print(text)
    Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
