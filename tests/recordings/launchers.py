"""Recorder launchers for tests: real components standing in for R2's Chromium pool.

- :class:`StreamingLauncher` (in the server's process): on ``start`` it joins the room as the ``recorder``
  with the page URL's roomKey and streams a real WebM file (made by ffmpeg, standing in for the browser's
  MediaRecorder output) into the ingest WebSocket in chunks, until ``stop`` (then it closes its sockets, as
  the page does after its final ``dataavailable``) or the end of the file (then it waits for ``stop``).
- :class:`FileDropLauncher` (``HEREWITH_RECORDER_LAUNCHER=tests.recordings.launchers:FileDropLauncher`` in a
  ``herewith serve`` child): writes each page URL to ``<data_dir>/launched/<recordingId>.url`` for the test
  to stream from outside the server, so the server can be killed while the stream goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import websockets

CHUNK_BYTES = 32 * 1024  # below the server's WebSocket frame limit (64 KiB)
COMPOSITE_MIME = "video/webm;codecs=vp8,opus"


def ingest_url(page_url: str, stream: str = "composite", mime: str = COMPOSITE_MIME) -> str:
    """The ingest WebSocket URL a recorder page derives from its page URL (the recording interface, 5)."""
    parts = urlsplit(page_url)
    q = parse_qs(parts.query)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return (f"{scheme}://{parts.netloc}/record/ingest/{q['recordingId'][0]}?token={q['ingestToken'][0]}"
            f"&stream={stream}&mime={quote(mime, safe='')}")


def chunks(data: bytes, size: int = CHUNK_BYTES) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


async def stream_file(url: str, data: bytes, interval: float = 0.0, stop: asyncio.Event | None = None,
                      limit: int | None = None, progress: dict[str, int] | None = None, key: str = "") -> int:
    """Send ``data`` (up to ``limit`` bytes) in chunks to ``url``, ``interval`` seconds apart, until ``stop``
    is set; then close. ``progress[key]`` counts the bytes sent so far. Returns the bytes sent."""
    sent = 0
    async with websockets.connect(url, max_size=2**20, ping_interval=None) as ws:
        for chunk in chunks(data[:limit] if limit is not None else data):
            if stop is not None and stop.is_set():
                break
            await ws.send(chunk)
            sent += len(chunk)
            if progress is not None:
                progress[key] = sent
            if interval:
                await asyncio.sleep(interval)
        if stop is not None:
            await stop.wait()
    return sent


class StreamingLauncher:
    """See the module doc. ``available=False``: every start is refused (no free recorder). ``audio``: also
    stream the same file's bytes as one participant's audio track (``stream=<participant id>``)."""

    def __init__(self, webm: bytes, interval: float = 0.0, available: bool = True, join_room: bool = True,
                 audio_of: str | None = None) -> None:
        self.webm = webm
        self.interval = interval
        self.available = available
        self.join_room = join_room
        self.audio_of = audio_of
        self.fail_start = False  # True: free, but the recorder does not come up
        self.started: list[tuple[str, str]] = []
        self.stopped: list[str] = []
        self.sent: dict[str, int] = {}  # composite bytes sent so far, by recording id
        self._stops: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[Any]] = {}

    @property
    def free(self) -> int:
        """Recorders free, as R2's pool tells it."""
        return 1 if self.available else 0

    async def start(self, recording_id: str, page_url: str) -> bool:
        if not self.available or self.fail_start:
            return False
        self.started.append((recording_id, page_url))
        self._stops[recording_id] = asyncio.Event()
        self._tasks[recording_id] = asyncio.create_task(self._run(recording_id, page_url))
        return True

    async def _run(self, recording_id: str, page_url: str) -> None:
        stop = self._stops[recording_id]
        async with contextlib.AsyncExitStack() as stack:
            if self.join_room:
                parts = urlsplit(page_url)
                room_key = parse_qs(parts.query)["roomKey"][0]
                scheme = "wss" if parts.scheme == "https" else "ws"
                sig = await stack.enter_async_context(websockets.connect(
                    f"{scheme}://{parts.netloc}/signal{parts.path}", max_size=2**20, ping_interval=None))
                await sig.send(json.dumps({"type": "join", "roomKey": room_key, "displayName": "Recorder"}))
                stack.push_async_callback(_cancel, asyncio.create_task(_drain(sig)))
            jobs = [stream_file(ingest_url(page_url), self.webm, self.interval, stop, progress=self.sent,
                                key=recording_id)]
            if self.audio_of:
                jobs.append(stream_file(ingest_url(page_url, self.audio_of, "audio/webm;codecs=opus"), self.webm,
                                        self.interval, stop))
            await asyncio.gather(*jobs)

    async def stop(self, recording_id: str) -> None:
        self.stopped.append(recording_id)
        event = self._stops.get(recording_id)
        if event is not None:
            event.set()
        task = self._tasks.pop(recording_id, None)
        if task is not None:
            await asyncio.wait_for(asyncio.shield(task), 20)

    async def close(self) -> None:
        for recording_id in list(self._tasks):
            await self.stop(recording_id)


async def _drain(ws: Any) -> None:
    with contextlib.suppress(Exception):
        async for raw in ws:
            if json.loads(raw).get("type") == "ping":
                await ws.send('{"type":"pong"}')


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


class FileDropLauncher:
    """See the module doc: built with the server's Settings."""

    def __init__(self, settings: Any) -> None:
        self.directory = Path(settings.data_dir) / "launched"

    async def start(self, recording_id: str, page_url: str) -> bool:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f"{recording_id}.tmp"
        tmp.write_text(page_url)
        tmp.replace(self.directory / f"{recording_id}.url")
        return True

    async def stop(self, recording_id: str) -> None:
        return None

    async def close(self) -> None:
        return None
