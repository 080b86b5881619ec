"""Cheap group-room publishers for big-room tests and benchmarks: pre-encoded VP8 and Opus relayed as they are.

An :class:`EncodedTrack` loops the packets of one stream of a WebM file, paced in real time; aiortc packs them
into RTP without decoding or encoding (bench/recording.py does the same), so twenty or fifty publishers cost
the machine little. Audio packets carry the RTP audio-level header extension (RFC 6464) that Janus's talking
detection reads: aiortc computes it only for frames it encodes itself, so the level of each pre-encoded packet
is measured once, when the file is loaded (decoded with PyAV, dBov as aiortc computes it), and set on the frame
the sender is about to packetize.

:class:`RelayPublisher` is an :class:`~tests.media.sfu_client.SfuClient` that publishes such tracks; its audio
can switch from silence to speech (:meth:`RelayPublisher.speak`) at a moment the test chooses.

Usage::

    video = make_video(tmp / "v.webm")                     # ffmpeg: testsrc2 as VP8, a keyframe a second
    pub = RelayPublisher(ws_url, room, display="p1", video=video, speech=SPEECH)
    await pub.join()                                         # publishes silence + video, subscribes to nothing
    pub.speak()                                              # from now on its audio is the speech file
"""

from __future__ import annotations

import asyncio
import fractions
import subprocess
import time
from pathlib import Path
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.rtp import compute_audio_level_dbov

from .peers import NO_ICE_SERVERS
from .sfu_client import SfuClient

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "media"
SPEECH = FIXTURES / "speech.webm"  # 7.4 s of English speech, Opus 48 kHz mono, 20 ms packets (fixtures/README.md)
SILENT_LEVEL = -127  # dBov of digital silence (RFC 6464 carries 0..127, the magnitude)


def audio_level_dbov(frame: av.AudioFrame) -> int:
    """Level of a decoded frame in dBov, -127..0 (aiortc's RFC 6465 computation, which reads s16 samples: the
    Opus decoder's float samples are converted first)."""
    frames = av.AudioResampler(format="s16", layout="mono", rate=frame.sample_rate).resample(frame)
    return max((compute_audio_level_dbov(f) for f in frames), default=SILENT_LEVEL)


def make_video(path: Path, *, size: str = "320x180", fps: int = 15, seconds: int = 4, bitrate: str = "150k",
               hue: int = 0) -> Path:
    """A short VP8 WebM (ffmpeg testsrc2, a keyframe a second) for :class:`EncodedTrack`; made once per path."""
    if not path.exists():
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}", "-t", str(seconds),
             "-vf", f"hue=h={hue}", "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", bitrate,
             "-g", str(fps), "-keyint_min", str(fps), "-an", "-f", "webm", str(path)], check=True, timeout=120)
    return path


def make_silence(path: Path, seconds: int = 2, *, frame_ms: int = 60) -> Path:
    """Opus silence as WebM, in ``frame_ms`` packets (libopus: 2.5 .. 120 ms); made once per path.

    60 ms packets (17 a second instead of 50 at 20 ms) make a silent publisher cheap to run; Janus's talking
    detection counts packets (``audio_active_packets``), so silence is just reported later, and a speaker
    (:meth:`RelayPublisher.speak`: the speech file, 20 ms packets) as early as from a browser."""
    if not path.exists():
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", str(seconds),
             "-c:a", "libopus", "-b:a", "16k", "-frame_duration", str(frame_ms), "-f", "webm", str(path)],
            check=True, timeout=60)
    return path


def _load(path: Path, kind: str) -> tuple[list[tuple[bytes, int, int | None]], fractions.Fraction]:
    """``[(packet bytes, pts from 0, audio level or None)]`` and the stream's time base."""
    out: list[tuple[bytes, int, int | None]] = []
    with av.open(str(path)) as container:
        stream = next(s for s in container.streams if s.type == kind)
        time_base = fractions.Fraction(stream.time_base)
        for packet in container.demux(stream):
            if not packet.size or packet.pts is None:
                continue
            level = None
            if kind == "audio":
                frames = packet.decode()
                level = max((audio_level_dbov(f) for f in frames), default=SILENT_LEVEL)
            out.append((bytes(packet), int(packet.pts), level))
    first = out[0][1]
    return [(data, pts - first, level) for data, pts, level in out], time_base


class EncodedTrack(MediaStreamTrack):
    """Pre-encoded packets of one stream, looped and paced in real time. ``level``: the audio level (dBov,
    -127..0) of the packet handed out last. :meth:`switch` changes the source file at the next packet."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.level: int | None = None
        self.started: float | None = None
        self.offset = 0  # pts ticks of the packets already sent from earlier files/loops
        self._use(path)

    def _use(self, path: Path) -> None:
        self.packets, self.time_base = _load(path, self.kind)
        step = self.packets[1][1] - self.packets[0][1] if len(self.packets) > 1 else 1
        self.loop_ticks = self.packets[-1][1] + step
        self.i = 0

    def switch(self, path: Path) -> None:
        """From the next packet on, loop ``path`` instead (same kind, same time base)."""
        self.offset += self.packets[self.i][1]  # the next packet's place on the timeline
        self._use(path)

    async def recv(self) -> av.Packet:
        if self.started is None:
            self.started = time.monotonic()
        data, pts, level = self.packets[self.i]
        pts += self.offset
        self.i += 1
        if self.i == len(self.packets):
            self.i = 0
            self.offset += self.loop_ticks
        due = self.started + float(pts * self.time_base)
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self.level = level
        packet = av.Packet(data)
        packet.pts = pts
        packet.time_base = self.time_base
        return packet


def _send_levels(sender: Any, track: EncodedTrack) -> None:
    """Make ``sender`` put ``track.level`` in each audio packet's audio-level header extension (aiortc sets it
    only for audio it encodes itself). A test-client shim around aiortc's one packetizing step."""
    inner = sender._next_encoded_frame

    async def next_frame(codec: Any) -> Any:
        frame = await inner(codec)
        if frame is not None and track.level is not None:
            frame.audio_level = track.level
        return frame

    sender._next_encoded_frame = next_frame


class RelayPublisher(SfuClient):
    """A group-room participant publishing ``video`` and silent audio as they are (no encoding). By default it
    joins with ``grid`` and never reports a tile: it receives no video, only the loudest few's audio."""

    def __init__(self, *args: Any, video: Path, silence: Path, speech: Path = SPEECH, grid: bool = True,
                 **kw: Any) -> None:
        super().__init__(*args, grid=grid, **kw)
        self.video_path, self.silence, self.speech = video, silence, speech
        self.audio: EncodedTrack | None = None
        self.spoke_at: float | None = None

    async def publish(self, track: MediaStreamTrack | None = None) -> None:
        async with self._lock:
            if self.pub_pc is not None:
                await self.pub_pc.close()
            pc = self.pub_pc = RTCPeerConnection(NO_ICE_SERVERS)
            self.audio = EncodedTrack(self.silence, "audio")
            audio = pc.addTransceiver(self.audio, direction="sendonly")
            _send_levels(audio.sender, self.audio)
            pc.addTransceiver(EncodedTrack(self.video_path, "video"), direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            await self.send({"type": "sfu_publish", "sdp": pc.localDescription.sdp})

    def speak(self) -> None:
        """Switch the audio from silence to speech (looped) at the next packet; ``spoke_at`` = now."""
        assert self.audio is not None, "not publishing"
        self.audio.switch(self.speech)
        self.spoke_at = time.monotonic()
