"""One transcription job, start to end: the testable inner function of :mod:`herewith.jobs.transcriptions`.

For a claimed ``in_progress`` RECORDING_TRANSCRIPTION:

1. each participant's audio track of the recording (``RecordingTrack``, kind ``audio``: Opus in WebM, in the
   data directory or fetched from the meeting's S3 bucket into a temporary folder) is transcribed on its
   own in a speech worker process, with VAD and word timestamps; its segments become utterances of that
   participant's display name, shifted by when the track started in the recording;
2. the utterances of all tracks are merged by time into the Markdown transcript
   (:mod:`herewith.transcriptions.transcript`); the language is the meeting's ``liveTranscription.language``
   or, when none is set, the one detected on most of the speech;
3. in one transaction: ``ready`` with the transcript, and ``transcription.finished`` into the outbox.

A failure that may pass (a speech worker died) releases the claim for another attempt, up to
``transcription_attempts`` runs; one that will not (no audio tracks, a file gone) fails the transcription
with ``transcription.failed``. A process killed mid-job leaves its claim to lapse with its node row.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.config import Settings
from herewith.db.transactions import in_transaction
from herewith.recordings import service as recordings
from herewith.recordings.storage import LocalStorage, StorageError
from herewith.speech import SpeechUnavailable
from herewith.transcriptions import repository, service
from herewith.transcriptions.models import FAILED, IN_PROGRESS, READY
from herewith.transcriptions.transcriber import SpeechNotAvailable, Transcriber
from herewith.transcriptions.transcript import Utterance, clean_speaker, render_markdown, utterances_of

log = structlog.get_logger(__name__)


class PermanentFailure(Exception):
    """The transcription cannot succeed by trying again (the message says why)."""


async def _track_files(rec, meeting, tracks, settings: Settings, work: Path) -> list[tuple[object, Path]]:  # noqa: ANN001
    store = LocalStorage(settings.data_dir / "recordings")
    files = []
    s3 = recordings.s3_storage(meeting, settings) if rec.storage_type == "s3" and meeting is not None else None
    for track in tracks:
        if s3 is not None:
            path = work / f"{track.seq}.webm"
            await s3.download(s3.key(track.storage_key), path)
        else:
            path = store.path(track.storage_key)
            if not path.is_file():
                raise PermanentFailure(f"the audio track of {track.participant_id or track.stream} is gone")
        files.append((track, path))
    return files


async def run_transcription(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings,
                            transcriber: Transcriber, transcription_id: str, node_id: str,
                            now: Callable[[], datetime]) -> str:
    """Run one claimed transcription; returns the state it ends in: ``ready``, ``failed``, or ``in_progress``
    (released for another attempt). Database errors propagate (the claim then lapses with this node)."""

    async def load(s: AsyncSession):  # noqa: ANN202
        t = await repository.get(s, transcription_id)
        if t is None or t.recording_id is None:
            return t, None, None, []
        rec = await repository.recording(s, t.recording_id)
        meeting = await repository.meeting_by_id(s, t.meeting_id)
        return t, rec, meeting, list(await repository.audio_tracks(s, t.recording_id))

    t, rec, meeting, tracks = await in_transaction(sessionmaker, load)
    if t is None or t.state != IN_PROGRESS or t.deleted_at is not None or t.node_id != node_id:
        return t.state if t is not None else FAILED
    if t.attempts > settings.transcription_attempts:
        return await _conclude(sessionmaker, settings, transcription_id, node_id, now,
                               error=f"gave up after {settings.transcription_attempts} attempts: {t.error or 'unknown'}")
    language = service.meeting_language(meeting)
    work = Path(tempfile.mkdtemp(prefix="transcription-"))
    try:
        if rec is None or rec.deleted_at is not None:
            raise PermanentFailure("the recording was deleted")
        if not tracks:
            raise PermanentFailure("the recording has no per-participant audio tracks")
        utterances: list[Utterance] = []
        detected: Counter[str] = Counter()
        for track, path in await _track_files(rec, meeting, tracks, settings, work):
            transcript = await transcriber.transcribe(path, language)
            offset = max(0.0, (track.started_at - rec.started_at).total_seconds())
            speaker = clean_speaker(track.display_name, fallback=f"Participant {track.participant_id or track.stream}")
            utterances += utterances_of(transcript.segments, speaker, offset)
            detected[transcript.language] += sum(seg.end - seg.start for seg in transcript.segments)
            log.info("transcription_track_done", transcription_id=transcription_id, stream=track.stream,
                     language=transcript.language, duration=transcript.duration,
                     processing_seconds=transcript.processing_seconds)
        final_language = language or (detected.most_common(1)[0][0] if detected else None)
        markdown = render_markdown(t.room_name, t.started_at, final_language, utterances)
    except (PermanentFailure, StorageError) as exc:
        return await _conclude(sessionmaker, settings, transcription_id, node_id, now, error=str(exc))
    except SpeechNotAvailable as exc:
        reason = (exc.data or {}).get("reason", exc.message)
        return await _conclude(sessionmaker, settings, transcription_id, node_id, now, error=reason)
    except (SpeechUnavailable, OSError, RuntimeError, ValueError) as exc:  # a worker died, a file unreadable
        return await release(sessionmaker, settings, transcription_id, node_id, now, f"{type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return await _conclude(sessionmaker, settings, transcription_id, node_id, now, markdown=markdown,
                           language=final_language)


async def _conclude(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, transcription_id: str,
                    node_id: str, now: Callable[[], datetime], *, markdown: str | None = None,
                    language: str | None = None, error: str | None = None) -> str:
    async def go(s: AsyncSession) -> str:
        t = await repository.get(s, transcription_id, for_update=True)
        if t is None or t.state != IN_PROGRESS or t.node_id != node_id:
            return t.state if t is not None else FAILED
        if t.deleted_at is not None:
            t.node_id = None
            return t.state
        if markdown is not None:
            await service.finish(s, t, markdown, language, now(), settings)
            return READY
        await service.fail(s, t, error or "failed", now(), settings)
        return FAILED

    state = await in_transaction(sessionmaker, go)
    log.info("transcription_done", transcription_id=transcription_id, state=state, error=error)
    return state


async def release(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, transcription_id: str,
                   node_id: str, now: Callable[[], datetime], error: str) -> str:
    """Give back this node's claim after a failure that may pass (``in_progress`` again, for another
    attempt), or fail the transcription once it has had ``transcription_attempts`` runs. Returns the state."""

    async def go(s: AsyncSession) -> str:
        t = await repository.get(s, transcription_id, for_update=True)
        if t is None or t.state != IN_PROGRESS or t.node_id != node_id:
            return t.state if t is not None else FAILED
        if t.attempts >= settings.transcription_attempts:
            await service.fail(s, t, error, now(), settings)
            return FAILED
        t.node_id, t.error = None, error[:2000]
        return IN_PROGRESS

    state = await in_transaction(sessionmaker, go)
    log.warning("transcription_attempt_failed", transcription_id=transcription_id, state=state, error=error)
    return state
