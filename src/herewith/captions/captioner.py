"""The captioner participant: a process that joins a room as ``captioner``, receives each participant's
audio and sends their captions over signaling.

Started by :class:`herewith.captions.control.CaptionerLauncher` (one process per captioned room, so a crash
costs one room's captions and its CPU is easy to see; the server's event loop never touches its audio)::

    HEREWITH_CAPTIONER_KEY=<room key> python -m herewith.captions.captioner \\
        --signal-url ws://127.0.0.1:8080/signal/<room> --model tiny.en --cache-dir data/models \\
        [--language en] [--workers 2]

What it does:

1. joins over the room WebSocket like any client (``join`` with its ``captioner`` room key, no media). In
   peer-to-peer rooms the room tells everyone, and each sending page opens an audio-only connection to it
   (``web/static/mesh.js``); it answers their offers with aiortc (receive only) and trickles nothing (aiortc's
   answer carries its candidates). In group rooms the server subscribes it to every publisher's audio (and
   nothing else, :mod:`herewith.media.group_rooms`): one aiortc connection with Janus (``sfu_offer`` ->
   ``sfu_answer``), each audio m-line's owner named in the offer's ``streams``;
2. per track: decoded Opus frames -> 16 kHz mono float32 (``av.AudioResampler``) -> Silero VAD (the ONNX model
   shipped in the faster-whisper wheel; a thread, 512-sample windows) -> :class:`~herewith.captions.live.TrackCaptions`;
3. a scheduler gives free decoder processes (:class:`~herewith.captions.decoder.DecoderPool`) the next decode
   (:func:`~herewith.captions.live.pick_next`: finals first, then the active speakers), and sends each result as
   ``caption {participantId, text, final, utteranceId}``;
4. leaves on SIGTERM (the open utterances are finalized first, at most ``--drain-seconds``), on ``ended`` or
   ``removed``, or when the socket closes.

Frames of a track are read as they come (aiortc's queue never grows); when the CPU is short, decodes come less
often, never the audio reading.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from herewith.captions.live import SAMPLE_RATE, VAD_WINDOW, Caption, Decode, TrackCaptions, pick_next

log = structlog.get_logger("herewith.captioner")

KEY_ENV = "HEREWITH_CAPTIONER_KEY"
TICK = 0.05  # seconds between scheduler rounds


@dataclass
class Peer:
    """A peer-to-peer room participant's connection to the captioner."""

    participant_id: str
    pc: Any
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


class Captioner:
    """See the module doc. ``send(message)`` writes one signaling frame; ``decoder`` is a DecoderPool (or
    anything with ``free``, ``workers`` and ``decode(pcm) -> future of (words, cpu seconds)``);
    ``vad(pcm) -> probabilities``."""

    def __init__(self, send: Any, decoder: Any, vad: Any, ice_addresses: list[str] | None = None,
                 cadence: float = 1.0, end_silence: float = 0.5, on_caption: Any = None) -> None:
        self.send = send
        self.decoder = decoder
        self.vad = vad
        self.ice_addresses = ice_addresses or []
        self.cadence = cadence
        self.end_silence = end_silence
        self.on_caption = on_caption
        self.peers: dict[str, Peer] = {}  # peer-to-peer rooms: one connection per sending participant
        self.listeners: dict[str, TrackCaptions] = {}  # participant id -> its caption state
        self.sub_pc: Any = None  # group rooms: the subscriber connection with Janus (audio m-lines only)
        self.subscription = -1
        self.mid_owner: dict[str, str] = {}  # group rooms: subscriber mid -> participant id
        self.sub_tasks: list[asyncio.Task[Any]] = []
        self.ice_servers: list[dict[str, Any]] = []
        self._decoding: set[asyncio.Task[Any]] = set()
        self._orphans: list[TrackCaptions] = []  # tracks of participants who left, until their final is sent
        self.decode_wall = 0.0  # moving average of a decode's wall time (seconds): how busy the CPU is
        self.stats = {"decodes": 0, "finals": 0, "partials": 0, "decode_seconds": 0.0, "decode_cpu_seconds": 0.0}

    # ------------------------------------------------------------------------------------------ signaling
    async def on_message(self, msg: dict[str, Any]) -> bool:
        """Handle one server frame; False when the captioner should leave."""
        kind = msg.get("type")
        if kind == "joined":
            self.ice_servers = msg.get("iceServers") or []
        elif kind == "offer":
            await self._on_offer(msg["from"], msg["sdp"])
        elif kind == "candidate":
            await self._on_candidate(msg)
        elif kind == "sfu_offer":
            await self._on_sfu_offer(msg)
        elif kind == "sfu_restart":
            await self._close_subscriber()
        elif kind == "participant_left":
            await self.drop(msg["participantId"])
        elif kind == "ping":
            self.send({"type": "pong"})
        elif kind in ("ended", "removed"):
            return False
        elif kind == "error":
            log.warning("captioner_error_frame", code=msg.get("code"), message=msg.get("message"))
        return True

    def _configuration(self, max_bundle: bool = False) -> Any:
        from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer

        servers = [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
                   for s in self.ice_servers if s.get("urls")]
        # [] = no STUN at all (None would mean Google's). Janus's subscriber offers bundle every m-line on one
        # transport: aiortc must too, or it routes the later audio streams to the wrong receiver
        # (tests/media/peers.py, SUBSCRIBER_CONFIG).
        if max_bundle:
            return RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        return RTCConfiguration(iceServers=servers)

    def listener(self, participant_id: str) -> TrackCaptions:
        track = self.listeners.get(participant_id)
        if track is None:
            track = TrackCaptions(participant_id, cadence=self.cadence, end_silence=self.end_silence)
            self.listeners[participant_id] = track
        return track

    async def _on_offer(self, participant_id: str, sdp: str) -> None:
        """Peer-to-peer rooms: a page offers its microphone (sendonly audio); answer receive-only."""
        from aiortc import RTCPeerConnection, RTCSessionDescription

        peer = self.peers.get(participant_id)
        if peer is None:
            log.info("captioner_peer", participant_id=participant_id)
            pc = RTCPeerConnection(self._configuration())
            peer = Peer(participant_id, pc)
            self.peers[participant_id] = peer

            @pc.on("track")
            def on_track(track: Any) -> None:
                if track.kind == "audio":
                    peer.tasks.append(asyncio.ensure_future(self._pump(track, lambda: participant_id)))

        await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for transceiver in peer.pc.getTransceivers():  # receive only: the captioner never sends media
            transceiver.direction = "recvonly" if transceiver.kind == "audio" else "inactive"
        await peer.pc.setLocalDescription(await peer.pc.createAnswer())
        self.send({"type": "answer", "to": participant_id, "sdp": peer.pc.localDescription.sdp})

    async def _on_sfu_offer(self, msg: dict[str, Any]) -> None:
        """Group rooms: Janus offers the publishers' audio (the server subscribes the captioner to audio
        only); ``streams`` says whose each m-line is. A new ``subscription`` replaces the connection."""
        from aiortc import RTCPeerConnection, RTCSessionDescription

        if self.sub_pc is None or msg.get("subscription") != self.subscription:
            await self._close_subscriber()
            self.subscription = msg.get("subscription", 0)
            pc = self.sub_pc = RTCPeerConnection(self._configuration(max_bundle=True))

            @pc.on("track")
            def on_track(track: Any) -> None:
                if track.kind != "audio":
                    return
                mid = next((t.mid for t in pc.getTransceivers() if t.receiver.track is track), None)
                self.sub_tasks.append(asyncio.ensure_future(self._pump(track, lambda: self.mid_owner.get(str(mid)))))

        self.mid_owner = {str(st["mid"]): st["participantId"] for st in msg.get("streams", [])
                          if st.get("kind") == "audio" and st.get("active", True) and st.get("participantId")}
        await self.sub_pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="offer"))
        for transceiver in self.sub_pc.getTransceivers():
            transceiver.direction = "recvonly" if transceiver.kind == "audio" else "inactive"
        await self.sub_pc.setLocalDescription(await self.sub_pc.createAnswer())
        self.send({"type": "sfu_answer", "sdp": self.sub_pc.localDescription.sdp})

    async def _close_subscriber(self) -> None:
        for task in self.sub_tasks:
            task.cancel()
        self.sub_tasks = []
        pc, self.sub_pc = self.sub_pc, None
        if pc is not None:
            with contextlib.suppress(Exception):
                await pc.close()

    async def _on_candidate(self, msg: dict[str, Any]) -> None:
        from aiortc.sdp import candidate_from_sdp

        peer = self.peers.get(msg.get("from", ""))
        text = msg.get("candidate")
        if peer is None or not text:
            return
        try:
            candidate = candidate_from_sdp(text.split(":", 1)[1] if text.startswith("candidate:") else text)
            candidate.sdpMid = msg.get("sdpMid")
            candidate.sdpMLineIndex = msg.get("sdpMLineIndex")
            await peer.pc.addIceCandidate(candidate)
        except Exception:  # noqa: BLE001 - a candidate we cannot use (e.g. mDNS) is skipped
            log.debug("candidate_skipped", candidate=text)

    async def drop(self, participant_id: str) -> None:
        """The participant left: its open utterance is finalized, its connection closed."""
        track = self.listeners.pop(participant_id, None)
        if track is not None:
            track.close(time.monotonic())
            self._orphans.append(track)
        peer = self.peers.pop(participant_id, None)
        if peer is None:
            return
        for task in peer.tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await peer.pc.close()

    # -------------------------------------------------------------------------------------------- audio
    async def _pump(self, track: Any, owner: Any) -> None:
        """Read the track's frames as they come: resample, VAD (in a thread), feed the caption state of
        ``owner()`` (whose audio it is now: a Janus m-line may carry another participant later)."""
        import av

        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        pending = np.zeros(0, np.float32)
        loop = asyncio.get_running_loop()
        current: str | None = None
        while True:
            try:
                frame = await track.recv()
            except Exception:  # noqa: BLE001 - MediaStreamError: the track ended
                break
            for out in resampler.resample(frame):
                pending = np.concatenate([pending, out.to_ndarray().reshape(-1).astype(np.float32)])
            usable = (len(pending) // (VAD_WINDOW * 3)) * VAD_WINDOW * 3  # ~100 ms per VAD call
            if not usable:
                continue
            pcm, pending = pending[:usable], pending[usable:]
            who = owner()
            if who != current and current is not None and current in self.listeners:
                self.listeners[current].close(time.monotonic())  # the m-line changed hands
            current = who
            if who is None:
                continue
            probs = await loop.run_in_executor(None, self.vad, pcm)
            self.listener(who).feed(pcm, probs, time.monotonic())
        if current is not None and current in self.listeners:
            self.listeners[current].close(time.monotonic())

    # --------------------------------------------------------------------------------------- scheduling
    def tracks(self) -> list[TrackCaptions]:
        self._orphans = [t for t in self._orphans if t.busy or t.pending_final_since() is not None]
        return list(self.listeners.values()) + self._orphans

    async def schedule(self, stop: asyncio.Event) -> None:
        """Give free decoders the next decode until ``stop`` is set (and log the counters every 30 s)."""
        next_log = time.monotonic() + 30
        while not stop.is_set():
            now = time.monotonic()
            # When decodes take longer than the cadence (a busy CPU), partials come less often, so the
            # finals (and the call) keep the CPU: the cadence is at least twice a decode's wall time.
            cadence = max(self.cadence, 2 * self.decode_wall)
            for track in self.tracks():
                track.cadence = cadence
            if now >= next_log:
                next_log = now + 30
                log.info("captioner_stats", tracks=len(self.listeners), **self.stats)
            while self.decoder.free > 0:
                # With several workers, the last free one waits for a final: an utterance that just ended
                # is captioned at once instead of after a partial's decode.
                reserve = self.decoder.workers > 1 and self.decoder.free == 1
                decode = pick_next(self.tracks(), now, finals_only=reserve)
                if decode is None:
                    break
                task = asyncio.ensure_future(self._run(decode, self.decoder.decode(decode.pcm)))
                self._decoding.add(task)
                task.add_done_callback(self._decoding.discard)
            await asyncio.sleep(TICK)

    def _track(self, track_id: str) -> TrackCaptions | None:
        track = self.listeners.get(track_id)
        if track is not None:
            return track
        return next((t for t in self._orphans if t.track_id == track_id), None)

    async def _run(self, decode: Decode, words_future: Any) -> None:
        track = self._track(decode.track_id)
        started = time.monotonic()
        try:
            words, cpu = await words_future
        except Exception:  # noqa: BLE001 - a failed decode costs one caption, never the captioner
            log.exception("decode_failed", participant_id=decode.track_id)
            if track is not None:
                track.failed(decode)
            return
        self.stats["decodes"] += 1
        wall = time.monotonic() - started
        self.stats["decode_seconds"] += wall
        self.decode_wall = wall if not self.decode_wall else 0.8 * self.decode_wall + 0.2 * wall
        self.stats["decode_cpu_seconds"] += cpu
        if track is None:
            return
        caption = track.result(decode, words)
        if caption is not None:
            self._send_caption(caption)

    def _send_caption(self, caption: Caption) -> None:
        self.stats["finals" if caption.final else "partials"] += 1
        if caption.final:
            log.info("final_caption", participant_id=caption.track_id, utterance_id=caption.utterance_id,
                     after_speech=round(time.monotonic() - caption.speech_end, 2) if caption.speech_end else None)
        self.send({"type": "caption", "participantId": caption.track_id, "text": caption.text[:2000],
                   "final": caption.final, "utteranceId": caption.utterance_id})
        if self.on_caption is not None:
            self.on_caption(caption)

    async def drain(self, seconds: float) -> None:
        """Finalize every open utterance and wait (at most ``seconds``) until their finals are sent."""
        now = time.monotonic()
        for track in self.listeners.values():
            track.close(now)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self._decoding and not any(t.busy or t.pending_final_since() is not None for t in self.tracks()):
                return
            await asyncio.sleep(TICK)

    async def close(self) -> None:
        await self._close_subscriber()
        for participant_id in list(self.peers):
            peer = self.peers.pop(participant_id)
            for task in peer.tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await peer.pc.close()


def silero_vad() -> Any:
    """Silero VAD as shipped in the faster-whisper wheel (:func:`herewith.speech.silero_vad_model`):
    ``vad(pcm) -> probabilities`` (one per 512 samples). Each window is scored with its 64 samples of left
    context, as faster-whisper's own VAD does."""
    from herewith.speech import silero_vad_model

    model = silero_vad_model()

    def vad(pcm: np.ndarray) -> np.ndarray:
        return np.asarray(model(pcm)).reshape(-1)

    return vad


def pin_ice_addresses(addresses: list[str]) -> None:
    """Gather host candidates only on ``addresses`` (aioice otherwise uses every address but loopback)."""
    if addresses:
        import aioice.ice

        aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: list(addresses)


async def run(signal_url: str, room_key: str, model: str, cache_dir: str, language: str | None, workers: int,
              ice_addresses: list[str], display_name: str, drain_seconds: float) -> int:
    """Join, caption until told to stop, leave. Returns the process exit status (2: no model)."""
    import websockets

    from herewith.captions.decoder import DecoderPool
    from herewith.speech import SpeechUnavailable, is_english_only, resolve_model

    try:  # blocking file I/O (hash of the model): fine here, this process has no call to relay yet
        model_dir = str(resolve_model(model, Path(cache_dir)))
    except SpeechUnavailable as exc:
        log.error("captioner_no_model", error=str(exc))
        return 2
    if language is None and is_english_only(model):
        language = "en"
    pin_ice_addresses(ice_addresses)
    decoder = DecoderPool(model_dir, workers=workers, language=language)
    vad = silero_vad()
    await decoder.warm_up()  # the model is loaded before we join: the room's "on" means captions can come
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    status = 0
    async with websockets.connect(signal_url, max_size=2 ** 20, open_timeout=20) as ws:
        outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=1024)

        def send(message: dict[str, Any]) -> None:
            try:
                outbox.put_nowait(json.dumps(message))
            except asyncio.QueueFull:  # the server stopped reading: drop captions, never block the audio
                log.warning("captioner_outbox_full")

        async def writer() -> None:
            while True:
                await ws.send(await outbox.get())

        captioner = Captioner(send, decoder, vad, ice_addresses)
        send({"type": "join", "roomKey": room_key, "displayName": display_name, "audio": False, "video": False})
        tasks = [asyncio.ensure_future(writer()), asyncio.ensure_future(captioner.schedule(stop))]

        async def reader() -> None:
            async for text in ws:
                if not await captioner.on_message(json.loads(text)):
                    break
            stop.set()

        tasks.append(asyncio.ensure_future(reader()))
        await stop.wait()
        await captioner.drain(drain_seconds)
        while not outbox.empty():
            await asyncio.sleep(0.02)
        with contextlib.suppress(Exception):
            await ws.send(json.dumps({"type": "leave"}))
        for task in tasks:
            task.cancel()
        await captioner.close()
        log.info("captioner_done", **captioner.stats)
    decoder.close()
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--signal-url", required=True)
    parser.add_argument("--model", default="tiny.en", help="a known model name or a CTranslate2 model directory")
    parser.add_argument("--cache-dir", default="data/models", help="where models shipped in parts are joined")
    parser.add_argument("--language", default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--ice-address", action="append", default=[])
    parser.add_argument("--display-name", default="Live captions")
    parser.add_argument("--drain-seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    key = os.environ.get(KEY_ENV)
    if not key:
        print(f"{KEY_ENV} is not set", file=sys.stderr)
        return 2
    return asyncio.run(run(args.signal_url, key, args.model, args.cache_dir, args.language, args.workers, args.ice_address,
                           args.display_name, args.drain_seconds))


if __name__ == "__main__":
    sys.exit(main())
