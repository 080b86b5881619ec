"""Ingest: a recorder's MediaRecorder chunks appended, in order, to WebM files on disk.

The recorder page opens one WebSocket per stream (the recording interface, section 5)::

    /record/ingest/{recordingId}?token=<ingestToken>&stream=<composite|participantId>&mime=<mimeType>

and sends the chunks as binary frames (a chunk may be split over several frames: the server only appends).
Each stream goes to ``<data_dir>/recordings/<recordingId>/<stream>.webm``. WebM (Matroska) is written as it
comes, so a ``kill -9`` of the server leaves a file that plays up to the last chunk written. A stream that
connects again continues its file, unless its first bytes start a new WebM document (a new EBML header: the
recorder restarted its MediaRecorder), which goes to the next part, ``<stream>.1.webm``, ``<stream>.2.webm``...

Writes run in a worker thread (``asyncio.to_thread``), one at a time per stream, so the event loop never
waits for the disk. A text frame ``{"type": "meta", "displayName": "Ann"}`` names a participant's stream.

Usage::

    stream = IngestStream(directory, "composite", "video/webm;codecs=vp8,opus", max_bytes=8 << 30)
    await stream.write(chunk)        # False: over max_bytes, nothing written
    await stream.close()
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

EBML_MAGIC = b"\x1a\x45\xdf\xa3"
STREAM_RE = re.compile(r"^(composite|[A-Za-z0-9_-]{1,64})$")
MIME_RE = re.compile(r"^(video|audio)/webm(;[ A-Za-z0-9=.,\"_-]{0,80})?$")
COMPOSITE = "composite"


class IngestRefused(Exception):
    """An ingest connection that is not accepted; ``code`` is the WebSocket close code (4400 bad request,
    4403 bad token, 4404 unknown recording, 4409 not recording on this node)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def check_stream(stream: str | None, mime: str | None) -> tuple[str, str]:
    """``stream`` (``composite`` or a participantId of ``[A-Za-z0-9_-]``) and ``mime`` (``video/webm...`` or
    ``audio/webm...``; default by stream). Raises :class:`IngestRefused` (4400)."""
    if not stream or not STREAM_RE.match(stream):
        raise IngestRefused(4400, "stream must be composite or a participantId")
    mime = mime or ("video/webm" if stream == COMPOSITE else "audio/webm")
    if not MIME_RE.match(mime):
        raise IngestRefused(4400, "mime must be video/webm or audio/webm (Matroska)")
    return stream, mime


def part_paths(directory: Path, stream: str) -> list[Path]:
    """The parts of ``stream`` in ``directory``, in order: ``<stream>.webm``, ``<stream>.1.webm``, ..."""
    parts = []
    first = directory / f"{stream}.webm"
    if first.exists():
        parts.append(first)
    numbered = []
    for path in directory.glob(f"{stream}.*.webm"):
        middle = path.name[len(stream) + 1:-len(".webm")]
        if middle.isdigit():
            numbered.append((int(middle), path))
    return parts + [p for _, p in sorted(numbered)]


def streams_on_disk(directory: Path) -> list[str]:
    """The stream names that have at least one part in ``directory`` (``composite`` first)."""
    if not directory.is_dir():
        return []
    names = {p.name.split(".", 1)[0] for p in directory.glob("*.webm")}
    return sorted(names, key=lambda n: (n != COMPOSITE, n))


def parse_meta(text: str) -> str | None:
    """The ``displayName`` of a ``{"type": "meta", "displayName": ...}`` frame (at most 100 characters), or None."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("type") != "meta":
        return None
    name = value.get("displayName")
    return name.strip()[:100] or None if isinstance(name, str) else None


class IngestStream:
    """One stream of one recording being written. ``on_first_chunk`` is called once, after the first bytes
    are on disk. ``bytes_written`` counts this connection's bytes; ``kick`` (set by the transport) closes
    the connection from the server side."""

    def __init__(self, directory: Path, stream: str, mime: str, max_bytes: int,
                 on_first_chunk: Callable[[], None] | None = None) -> None:
        self.directory = directory
        self.stream = stream
        self.mime = mime
        self.max_bytes = max_bytes
        self.display_name: str | None = None
        self.bytes_written = 0
        self.closed = asyncio.Event()
        self.kick: Callable[[], None] | None = None
        self._on_first_chunk = on_first_chunk
        self._fd: int | None = None
        self._lock = asyncio.Lock()

    @property
    def is_composite(self) -> bool:
        return self.stream == COMPOSITE

    def _open(self, first: bytes) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        parts = part_paths(self.directory, self.stream)
        if parts and parts[-1].stat().st_size > 0 and first.startswith(EBML_MAGIC):
            path = self.directory / f"{self.stream}.{len(parts)}.webm"  # a new WebM document: a new part
        elif parts:
            path = parts[-1]
        else:
            path = self.directory / f"{self.stream}.webm"
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def _write(self, data: bytes) -> None:
        if self._fd is None:
            self._fd = self._open(data)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    async def write(self, data: bytes) -> bool:
        """Append ``data``; False (nothing written) once the stream would pass ``max_bytes`` or after
        :meth:`close` (a newer connection of the same stream replaced this one)."""
        if not data:
            return True
        if self.bytes_written + len(data) > self.max_bytes or self.closed.is_set():
            return False
        async with self._lock:
            if self.closed.is_set():
                return False
            first = self.bytes_written == 0
            await asyncio.to_thread(self._write, data)
            self.bytes_written += len(data)
        if first and self._on_first_chunk is not None:
            self._on_first_chunk()
        return True

    async def close(self) -> None:
        """Close the file (idempotent); :attr:`closed` is set."""
        async with self._lock:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                await asyncio.to_thread(os.close, fd)
        self.closed.set()
