"""Finalization: what was ingested becomes the recording's file, in its storage, announced by a webhook.

For a recording in ``processing`` (stopped; or found after its node died: what is on disk is what there is):

1. the composite's WebM parts (``<data_dir>/recordings/<id>/composite*.webm``) are encoded by ffmpeg (an
   asyncio subprocess, at low priority) into ``fileFormat``: ``mp4`` (H.264 + AAC, ``-movflags +faststart``;
   H.264 from the recorder is kept as it is, only the Opus audio is encoded: a remux, not a transcode)
   or ``mkv`` (the recorder's VP8/VP9 + Opus, remuxed with a seek index). A file cut by a crash is read up to
   its last whole frame. Several parts (the recorder restarted) are joined in order.
2. each participant's audio stream is remuxed into ``tracks/<participantId>.webm`` (Opus, unchanged);
3. ffprobe measures the duration; the files go to storage: they stay in the data directory (``whereby``) or
   are uploaded to the meeting's S3 bucket (multipart);
4. in one transaction: ``ready`` with duration, size, filename and storage key, and ``recording.finished``
   into the webhook outbox (:func:`herewith.webhooks.service.enqueue`); only then the raw WebM goes (and,
   for S3, the local copies), so a crash before the commit leaves everything for the next attempt.

A failure leaves the recording ``processing`` for another attempt (another node's, or this one's after the
poll interval) until ``recording_finalize_attempts`` runs failed; then it is ``failed`` and its raw WebM is
kept. :func:`purge_deleted` removes the files of deleted recordings.

These are the testable inner functions of the recording job (:mod:`herewith.jobs.recordings`).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.config import Settings
from herewith.db.transactions import in_transaction
from herewith.recordings import repository, service
from herewith.recordings.ingest import COMPOSITE, part_paths, streams_on_disk
from herewith.recordings.models import FAILED, PROCESSING, READY, RecordingTrack
from herewith.recordings.storage import CONTENT_TYPES, LocalStorage, StorageError
from herewith.webhooks import service as webhooks

log = structlog.get_logger(__name__)

MIN_FFMPEG_TIMEOUT = 120.0


class FinalizeError(Exception):
    """Finalization could not finish (ffmpeg failed, no media, storage refused); the message is safe to store."""


@dataclass(frozen=True)
class Encoded:
    """A finished file: ``path``, ``duration_ms``, ``size_bytes``."""

    path: Path
    duration_ms: int
    size_bytes: int


def _nice(command: list[str]) -> list[str]:
    nice = shutil.which("nice")
    return [nice, "-n", "10", *command] if nice else command


async def run_tool(command: list[str], timeout: float) -> bytes:
    """Run ``command`` (an asyncio subprocess, stdin closed); its stdout. Raises :class:`FinalizeError` on a
    non-zero exit (with the end of stderr) or after ``timeout`` seconds (the process is killed)."""
    proc = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise FinalizeError(f"{Path(command[-1]).name}: ran out of time ({timeout:.0f} s)") from None
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        raise FinalizeError(f"{Path(command[-1]).name}: exit {proc.returncode}: {' | '.join(tail)[:500]}")
    return out


async def probe_duration_ms(path: Path, ffprobe: str = "ffprobe") -> int:
    """Duration of a media file in milliseconds (ffprobe's container duration). Raises FinalizeError."""
    out = await run_tool([ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)], 60)
    try:
        return int(round(float(json.loads(out)["format"]["duration"]) * 1000))
    except (KeyError, TypeError, ValueError):
        raise FinalizeError("ffprobe found no duration") from None


def _inputs(parts: list[Path], work: Path) -> list[str]:
    if len(parts) == 1:
        return ["-i", str(parts[0])]
    listing = work / "parts.txt"
    listing.write_text("".join(f"file '{p.resolve()}'\n" for p in parts))
    return ["-f", "concat", "-safe", "0", "-i", str(listing)]


async def video_codec(path: Path, ffprobe: str = "ffprobe") -> str | None:
    """The codec name of the first video stream (``h264``, ``vp8``, ...), or None (none, or unreadable)."""
    try:
        out = await run_tool([ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries",
                              "stream=codec_name", "-of", "json", str(path)], 60)
        streams = json.loads(out).get("streams") or []
        return streams[0].get("codec_name") if streams else None
    except (FinalizeError, ValueError):
        return None


async def encode(parts: list[Path], output: Path, file_format: str, ffmpeg: str = "ffmpeg",
                 timeout: float = MIN_FFMPEG_TIMEOUT, copy_video: bool = False) -> None:
    """Encode the WebM ``parts`` (in order) into ``output``: ``mp4`` (H.264 yuv420p + AAC, +faststart; with
    ``copy_video`` the H.264 the recorder made is kept as it is, and only the audio is encoded) or ``mkv``
    (streams copied, new index), ``webm`` (audio copied). Raises FinalizeError."""
    work = output.parent
    common = [ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-y", "-fflags", "+genpts+discardcorrupt"]
    if file_format == "mp4":
        # fps_mode vfr: MediaRecorder's WebM has millisecond timestamps and no frame rate; with the mp4
        # muxer's default (cfr) ffmpeg duplicated frames up to 1000 fps (a 21 s file took 118 s to encode).
        video = ["-c:v", "copy"] if copy_video else ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                                                      "-pix_fmt", "yuv420p", "-fps_mode", "vfr"]
        codecs = ["-map", "0:v:0?", "-map", "0:a:0?", *video, "-c:a", "aac", "-b:a", "128k",
                  "-movflags", "+faststart", "-f", "mp4"]
    elif file_format == "mkv":
        codecs = ["-map", "0", "-c", "copy", "-f", "matroska"]
    else:
        codecs = ["-map", "0:a", "-c", "copy", "-f", "webm"]
    tmp = output.with_name(output.name + ".part")
    await run_tool(_nice([*common, *_inputs(parts, work), *codecs, str(tmp)]), timeout)
    tmp.replace(output)


async def _encode_measured(parts: list[Path], output: Path, file_format: str, settings: Settings) -> Encoded:
    raw = sum(p.stat().st_size for p in parts)
    # ~1 s of work per 2 MB is far more than libx264 veryfast needs at 720p; the floor covers small files.
    timeout = max(MIN_FFMPEG_TIMEOUT, raw / 2_000_000)
    copied = file_format == "mp4" and await video_codec(parts[0], settings.recording_ffprobe) == "h264"
    try:
        await encode(parts, output, file_format, settings.recording_ffmpeg, timeout, copy_video=copied)
    except FinalizeError as exc:
        if not copied:
            raise
        log.warning("recording_h264_copy_failed", error=str(exc))  # encode it after all
        await encode(parts, output, file_format, settings.recording_ffmpeg, timeout)
    duration = await probe_duration_ms(output, settings.recording_ffprobe)
    return Encoded(output, duration, output.stat().st_size)


async def finalize_recording(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, recording_id: str,
                             now: Callable[[], datetime]) -> str:
    """Finalize one claimed recording (state ``processing``, claimed by this node). Returns the state it ends
    in: ``ready``, ``failed``, or ``processing`` (released for another attempt). Never raises for a media or
    storage failure; database errors propagate (the claim then lapses with this node)."""
    store = LocalStorage(settings.data_dir / "recordings")

    async def load(s: AsyncSession):  # noqa: ANN202
        rec = await repository.get(s, recording_id)
        return rec, (await repository.meeting_of(s, rec)) if rec is not None else None

    recording, meeting = await in_transaction(sessionmaker, load)
    if recording is None or recording.state != PROCESSING or recording.deleted_at is not None:
        return recording.state if recording is not None else FAILED
    directory = store.recording_dir(recording.id)
    try:
        result = await _produce(recording, meeting, directory, settings)
    except (FinalizeError, StorageError, OSError) as exc:
        return await _attempt_failed(sessionmaker, settings, recording_id, str(exc), now)

    filename, key, encoded, track_results = result

    async def done(s: AsyncSession) -> str:
        rec = await repository.get(s, recording_id, for_update=True)
        if rec is None or rec.state != PROCESSING:
            return rec.state if rec is not None else FAILED
        rec.state = READY
        rec.node_id = None
        rec.filename, rec.storage_key = filename, key
        rec.duration_ms, rec.size_bytes = encoded.duration_ms, encoded.size_bytes
        rec.error = None
        if rec.ended_at is None:
            rec.ended_at = rec.started_at + timedelta(milliseconds=encoded.duration_ms)
        if rec.room_session_id is None:
            rec.room_session_id = await repository.overlapping_room_session(s, rec.meeting_id, rec.started_at,
                                                                            rec.ended_at)
        known = {t.stream: t for t in await repository.tracks(s, recording_id)}
        for stream, (key_, size, duration) in track_results.items():
            track = known.get(stream)
            if track is None:  # written before a crash that came before its row
                track = RecordingTrack(recording_id=recording_id, stream=stream, kind="audio", participant_id=stream,
                                       mime="audio/webm", started_at=rec.started_at, bytes_received=0)
                s.add(track)
            track.storage_key, track.size_bytes, track.duration_ms = key_, size, duration
        if rec.deleted_at is None:
            await webhooks.enqueue(s, rec.organization_id, "recording.finished", service.finished_data(rec), now(),
                                   rec.meeting_id, timedelta(seconds=settings.webhook_retry_window_seconds))
        await s.flush()
        return READY

    state = await in_transaction(sessionmaker, done)
    if state == READY:
        await asyncio.to_thread(_tidy, directory, recording.storage_type)
    log.info("recording_finalized", recording_id=recording_id, state=state, duration_ms=encoded.duration_ms,
             size_bytes=encoded.size_bytes, storage=recording.storage_type)
    return state


async def _produce(recording, meeting, directory: Path, settings: Settings):  # noqa: ANN001, ANN202
    """Encode and store; returns (filename, storage key, Encoded, {stream: (key, size, duration_ms)})."""
    parts = part_paths(directory, COMPOSITE)
    parts = [p for p in parts if p.stat().st_size > 0]
    if not parts:
        raise FinalizeError("no media was received")
    filename = service.download_filename(recording.room_name, recording.started_at, recording.file_format)
    encoded = await _encode_measured(parts, directory / filename, recording.file_format, settings)
    if encoded.duration_ms <= 0:
        raise FinalizeError("the recording has no duration")
    track_results: dict[str, tuple[str, int, int]] = {}
    (directory / "tracks").mkdir(exist_ok=True)
    for stream in streams_on_disk(directory):
        if stream == COMPOSITE:
            continue
        stream_parts = [p for p in part_paths(directory, stream) if p.stat().st_size > 0]
        if not stream_parts:
            continue
        try:
            track = await _encode_measured(stream_parts, directory / "tracks" / f"{stream}.webm", "webm", settings)
        except FinalizeError as exc:  # one participant's audio must not cost the recording
            log.warning("recording_track_not_kept", recording_id=recording.id, stream=stream, error=str(exc))
            continue
        track_results[stream] = (f"{recording.id}/tracks/{stream}.webm", track.size_bytes, track.duration_ms)
    key = f"{recording.id}/{filename}"
    if recording.storage_type == "s3":
        if meeting is None:
            raise FinalizeError("the meeting of the recording is gone")
        s3 = service.s3_storage(meeting, settings)
        await s3.upload(encoded.path, s3.key(key), CONTENT_TYPES.get(recording.file_format, "application/octet-stream"))
        uploaded: dict[str, tuple[str, int, int]] = {}
        for stream, (relative, size, duration) in track_results.items():
            await s3.upload(directory / "tracks" / f"{stream}.webm", s3.key(relative), CONTENT_TYPES["webm"])
            uploaded[stream] = (s3.key(relative), size, duration)
        return filename, s3.key(key), encoded, uploaded
    return filename, key, encoded, track_results


def _tidy(directory: Path, storage_type: str) -> None:
    """After ``ready`` is committed: S3 holds the files, so the local directory goes; in local storage the
    encoded files stay and the raw WebM parts go."""
    if storage_type == "s3":
        shutil.rmtree(directory, ignore_errors=True)
        return
    for stream in streams_on_disk(directory):
        for part in part_paths(directory, stream):
            part.unlink(missing_ok=True)
    (directory / "parts.txt").unlink(missing_ok=True)


async def _attempt_failed(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, recording_id: str,
                          error: str, now: Callable[[], datetime]) -> str:
    async def go(s: AsyncSession) -> str:
        rec = await repository.get(s, recording_id, for_update=True)
        if rec is None or rec.state != PROCESSING:
            return rec.state if rec is not None else FAILED
        rec.error = error[:1000]
        rec.node_id = None
        if rec.finalize_attempts >= settings.recording_finalize_attempts or error == "no media was received":
            rec.state = FAILED
            if rec.ended_at is None:
                rec.ended_at = now()
        await s.flush()
        return rec.state

    state = await in_transaction(sessionmaker, go)
    log.warning("recording_finalize_failed", recording_id=recording_id, state=state, error=error[:300])
    return state


async def purge_deleted(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings,
                        now: Callable[[], datetime]) -> int:
    """Remove the files of deleted recordings (local directory, S3 objects) and mark them purged; returns
    how many. A storage failure leaves the recording for the next round."""
    store = LocalStorage(settings.data_dir / "recordings")

    async def due(s: AsyncSession):  # noqa: ANN202
        rows = list(await repository.to_purge(s))
        return [(r, await repository.meeting_of(s, r), list(await repository.tracks(s, r.id))) for r in rows]

    purged = 0
    for recording, meeting, tracks in await in_transaction(sessionmaker, due):
        try:
            if recording.storage_type == "s3" and recording.state == READY and meeting is not None:
                keys = [recording.storage_key] + [t.storage_key for t in tracks if t.storage_key]
                await service.s3_storage(meeting, settings).delete([k for k in keys if k])
            await store.delete_recording(recording.id)
        except (StorageError, OSError) as exc:
            log.warning("recording_purge_failed", recording_id=recording.id, error=str(exc))
            continue

        async def mark(s: AsyncSession, rid: str = recording.id) -> None:
            rec = await repository.get(s, rid, for_update=True)
            if rec is not None and rec.purged_at is None:
                rec.purged_at = now()

        await in_transaction(sessionmaker, mark)
        purged += 1
    return purged
