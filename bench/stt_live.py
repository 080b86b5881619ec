"""Live captions benchmark: end of utterance -> final caption, with 1, 2 and 4 people speaking at once.

A ``herewith serve`` child hosts a meeting with ``liveTranscription.startTrigger: automatic``; its captioner
process (herewith.captions.captioner: aiortc, Silero VAD, ``--workers`` Whisper decoder processes) joins when
the first person does. N aiortc participants join over signaling as a page would and offer the captioner an
audio-only connection (web/static/mesh.js does the same); each sends espeak-ng sentences (made at start) in a
loop: a sentence (2-4 s) then 2.5 s of silence, the speakers' loops started 0.7 s apart, so with N speakers
about N x 0.6 of them speak at any moment. A listener (a plain WebSocket participant) receives the captions.

Measured over ``--seconds`` per case, after a 5 s settle:
* latency: for each final caption, the time from the end of the sentence it captions (the wall clock when the
  sender's track emitted the sentence's last audio frame; sender and listener share the machine's clock) to
  its arrival at the listener; median, p90, max; and how many sentences got no final caption;
* CPU per speaker: utime+stime of the captioner process and its decoder processes, in cores, divided by N;
  the server process's CPU beside it (the call side: signaling relay);
* the 1-speaker case is the baseline the others are compared with (ratios in the same run).
Target (issue 16): median <= 2 s with two speakers, on this 2-core machine.

Run (WebRTC on loopback only; no namespace needed, nothing leaves 127.0.0.1):

    .venv/bin/python bench/stt_live.py [--seconds 40] [--speakers 1,2,4] [--workers 2] [--model tiny.en]

Prints the figures and writes bench/results/stt_live.json (machine, date, load average, parameters, figures).
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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aioice.ice  # noqa: E402

aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]  # loopback-only ICE

import av  # noqa: E402
import httpx  # noqa: E402
import numpy as np  # noqa: E402
import websockets  # noqa: E402
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402

from tests.support.servers import ProcessServer, create_org_key  # noqa: E402
from herewith.config import Settings  # noqa: E402

RATE = 48_000
FRAME = 960  # 20 ms
PAUSE = 2.5
SENTENCES = [
    "good morning everyone, welcome to the weekly budget meeting",
    "please send the quarterly report to the marketing team",
    "we decided to delay the mobile release by one week",
    "john will update the budget spreadsheet by friday",
    "testing will start on monday and should take two weeks",
    "the engineering team finished the new login page",
    "maria is worried that the mobile app is not ready",
    "we will meet again on tuesday at ten in the morning",
]


def espeak(text: str, path: Path, voice: str) -> np.ndarray:
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "155", "-w", str(raw), text], check=True, timeout=60)
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(raw), "-f", "s16le", "-ac", "1", "-ar", str(RATE), "-"],
                         check=True, capture_output=True, timeout=60).stdout
    return np.frombuffer(pcm, np.int16)


class SpeechTrack(MediaStreamTrack):
    """Mono 48 kHz audio: ``offset`` s of silence, then each sentence followed by PAUSE s, in a loop.
    ``ends`` holds (wall-clock time at which a sentence's last frame was emitted, the sentence's index)."""

    kind = "audio"

    def __init__(self, sentences: list[np.ndarray], offset: float) -> None:
        super().__init__()
        parts = []
        self.end_samples: list[int] = []
        pos = 0
        for s in sentences:
            parts += [s, np.zeros(int(PAUSE * RATE), np.int16)]
            pos += len(s)
            self.end_samples.append(pos)
            pos += int(PAUSE * RATE)
        self.loop = np.concatenate(parts)
        self.pos = -int(offset * RATE)
        self.ends: list[tuple[float, int]] = []
        self.start: float | None = None
        self.sent = 0

    async def recv(self) -> av.AudioFrame:
        if self.start is None:
            self.start = time.time()
        wait = self.start + self.sent / RATE - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        if self.pos < 0:
            chunk = np.zeros(FRAME, np.int16)
        else:
            i = self.pos % len(self.loop)
            chunk = np.take(self.loop, range(i, i + FRAME), mode="wrap")
            for index, end in enumerate(self.end_samples):
                if i < end <= i + FRAME:
                    self.ends.append((time.time() + (end - i) / RATE, index))
        self.pos += FRAME
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self.sent
        frame.time_base = fractions.Fraction(1, RATE)
        self.sent += FRAME
        return frame


class Participant:
    """A signaling client; with a ``track`` it offers it to the captioner as a page does (``texts``: the
    sentences the track says, in order)."""

    def __init__(self, url: str, name: str, track: SpeechTrack | None = None, texts: list[str] | None = None,
                 room_key: str | None = None) -> None:
        self.url, self.name, self.track, self.texts, self.room_key = url, name, track, texts or [], room_key
        self.id: str | None = None
        self.pc: RTCPeerConnection | None = None
        self.captions: list[tuple[float, dict[str, Any]]] = []
        self.captions_on = asyncio.Event()
        self.joined = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.ws = await websockets.connect(self.url, max_size=2**20, ping_interval=None)
        join = {"type": "join", "displayName": self.name, "audio": bool(self.track), "video": False}
        if self.room_key:
            join["roomKey"] = self.room_key
        await self.ws.send(json.dumps(join))
        self._task = asyncio.ensure_future(self._read())

    async def _offer(self, captioner_id: str) -> None:
        if self.track is None or self.pc is not None:
            return
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver(self.track, direction="sendonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.ws.send(json.dumps({"type": "offer", "to": captioner_id, "sdp": self.pc.localDescription.sdp}))

    async def _read(self) -> None:
        async for text in self.ws:
            m = json.loads(text)
            kind = m["type"]
            if kind == "joined":
                self.id = m["participantId"]
                self.joined.set()
                if (m.get("captions") or {}).get("state") == "on":
                    self.captions_on.set()
                for p in m["participants"]:
                    if p["role"] == "captioner":
                        await self._offer(p["id"])
            elif kind == "participant_joined" and m["participant"]["role"] == "captioner":
                await self._offer(m["participant"]["id"])
            elif kind == "answer" and self.pc is not None:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=m["sdp"], type="answer"))
            elif kind == "captions" and m["state"] == "on":
                self.captions_on.set()
            elif kind == "caption":
                self.captions.append((time.time(), m))
            elif kind == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))

    async def close(self) -> None:
        try:
            await self.ws.send(json.dumps({"type": "leave"}))
            await self.ws.close()
        except Exception:  # noqa: BLE001
            pass
        if self._task:
            self._task.cancel()
        if self.pc:
            await self.pc.close()


def words(text: str) -> list[str]:
    return [w.strip(".,!?;:").lower() for w in text.split() if w.strip(".,!?;:")]


def overlap(reference: str, heard: str) -> float:
    """Share of the reference sentence's words found in the caption."""
    ref, got = words(reference), set(words(heard))
    return sum(w in got for w in ref) / len(ref) if ref else 0.0


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError):
        return 0.0


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def captioner_tree(server_pid: int) -> list[int]:
    """The captioner process under the server and its decoder workers (and their helpers)."""
    tree: list[int] = []
    for pid in children(server_pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"herewith.captions.captioner" in cmd:
            stack = [pid]
            while stack:
                p = stack.pop()
                tree.append(p)
                stack += children(p)
    return tree


async def run_case(server: ProcessServer, api: httpx.AsyncClient, voices: list[tuple[list[str], list[np.ndarray]]], n: int,
                   seconds: float) -> dict[str, Any]:
    r = await api.post("/meetings", json={"endDate": "2099-01-01T00:00:00.000Z", "fields": ["viewerRoomUrl"],
                                          "liveTranscription": {"destination": None, "startTrigger": "automatic",
                                                                "language": "en", "liveCaptions": True}})
    r.raise_for_status()
    room = r.json()["roomName"]
    url = server.base_url.replace("http://", "ws://") + "/signal/" + room.lstrip("/")
    # a viewer: it takes none of the four senders' places of a peer-to-peer room
    listener = Participant(url, "Listener", room_key=r.json()["viewerRoomUrl"].split("roomKey=", 1)[1])
    await listener.start()
    await asyncio.wait_for(listener.captions_on.wait(), 180)
    speakers = [Participant(url, f"Speaker {i + 1}", SpeechTrack(voices[i % len(voices)][1], offset=0.7 * i),
                            voices[i % len(voices)][0]) for i in range(n)]
    for s in speakers:
        await s.start()
    await asyncio.wait_for(asyncio.gather(*(s.joined.wait() for s in speakers)), 30)
    await asyncio.sleep(5)  # settle: connections up, first utterances under way
    tree = captioner_tree(server.proc.pid)
    t0 = time.time()
    cpu0 = sum(cpu_seconds(p) for p in tree)
    srv0 = cpu_seconds(server.proc.pid)
    await asyncio.sleep(seconds)
    t1 = time.time()
    tree = sorted(set(tree) | set(captioner_tree(server.proc.pid)))
    cpu1 = sum(cpu_seconds(p) for p in tree)
    srv1 = cpu_seconds(server.proc.pid)
    await asyncio.sleep(6)  # the finals of sentences that ended inside the window
    latencies: list[float] = []
    missed = 0
    texts: list[str] = []
    for s in speakers:
        finals = [(at, m["text"]) for at, m in listener.captions if m["final"] and m["participantId"] == s.id]
        texts += [t for _at, t in finals][:2]
        used: set[int] = set()
        for end, index in [(e, i) for e, i in s.track.ends if t0 <= e <= t1]:
            # the first final after this sentence ended that holds most of its words
            match = next((k for k, (at, text) in enumerate(finals) if k not in used and at >= end - 0.3
                          and overlap(s.texts[index], text) >= 0.5), None)
            if match is None:
                missed += 1
                continue
            used.add(match)
            latencies.append(max(0.0, finals[match][0] - end))
    for p in [*speakers, listener]:
        await p.close()
    await asyncio.sleep(3)  # the room empties: the captioner leaves
    cores = (cpu1 - cpu0) / (t1 - t0)
    lat = sorted(latencies)
    return {
        "speakers": n, "window_seconds": round(t1 - t0, 1), "sentences": len(lat) + missed, "missed": missed,
        "latency_median_s": round(statistics.median(lat), 2) if lat else None,
        "latency_p90_s": round(lat[int(0.9 * (len(lat) - 1))], 2) if lat else None,
        "latency_max_s": round(lat[-1], 2) if lat else None,
        "captioner_cores": round(cores, 3), "cores_per_speaker": round(cores / n, 3),
        "server_cores": round((srv1 - srv0) / (t1 - t0), 3), "captioner_processes": len(tree),
        "sample_texts": texts[:4],
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--speakers", default="1,2,4")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", default="tiny.en")
    args = ap.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="stt-live-") as tmp:
        d = Path(tmp)
        voices = []
        for v, voice in enumerate(("en-us", "en", "en-us+m3", "en+f2")):
            order = SENTENCES[v * 2:] + SENTENCES[:v * 2]
            voices.append((order, [espeak(text, d / f"v{v}-{i}.wav", voice) for i, text in enumerate(order)]))
        env = {"HEREWITH_DATA_DIR": str(d / "data"), "HEREWITH_SECRET_KEY": "bench-secret-key-0123456789abcdef",
               "HEREWITH_LIVE_CAPTION_ICE_ADDRESSES": "127.0.0.1", "HEREWITH_LIVE_CAPTION_WORKERS": str(args.workers),
               "HEREWITH_LIVE_CAPTION_MODEL": args.model, "HEREWITH_LOG_LEVEL": "warning"}
        server = ProcessServer(env=env, log_path=d / "server.log").start()
        try:
            org = await create_org_key(Settings(data_dir=d / "data", secret_key=env["HEREWITH_SECRET_KEY"]))
            async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=org.headers, timeout=30) as api:
                cases = []
                for n in [int(x) for x in args.speakers.split(",")]:
                    case = await run_case(server, api, voices, n, args.seconds)
                    print(json.dumps(case))
                    cases.append(case)
        finally:
            server.stop()
    base = cases[0]
    for c in cases:
        if base["latency_median_s"] and c["latency_median_s"]:
            c["latency_median_vs_1_speaker"] = round(c["latency_median_s"] / base["latency_median_s"], 2)
        if base["cores_per_speaker"]:
            c["cores_per_speaker_vs_1_speaker"] = round(c["cores_per_speaker"] / base["cores_per_speaker"], 2)
    result = {
        "bench": "stt_live", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "parameters": {"seconds": args.seconds, "workers": args.workers, "model": args.model, "pause_s": PAUSE,
                       "cadence_s": 1.0, "end_silence_s": 0.6},
        "target": "median latency <= 2 s with two speakers",
        "cases": cases,
    }
    out = ROOT / "bench" / "results" / "stt_live.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    asyncio.run(main())
