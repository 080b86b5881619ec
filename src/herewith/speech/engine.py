"""faster-whisper inference: plain result types, the in-process calls, and the worker-process pool.

Everything that runs the model is blocking CPU work of seconds. :class:`SpeechEngine` runs it in worker
processes (a ``ProcessPoolExecutor`` started with ``spawn``, each worker loading the model once in its
initializer) so it never runs on an event loop; the in-process functions (:func:`load_model`,
:func:`transcribe_with`) are what those workers call and what a caller with its own worker (a live
captioner, a benchmark) may call directly.

Usage::

    engine = SpeechEngine(model_dir, workers=1)
    await engine.start()
    transcript = await engine.transcribe("alice.opus", language=None)   # language detected
    for segment in transcript.segments:
        print(segment.start, segment.end, segment.text, [(w.word, w.start) for w in segment.words])
    await engine.close()

    # inside a process of one's own:
    model = load_model(model_dir, cpu_threads=2)
    transcript = transcribe_with(model, samples_16k_float32, language="en", word_timestamps=False)
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from herewith.speech.errors import SpeechUnavailable

if TYPE_CHECKING:
    import numpy as np

#: Sample rate (Hz) of the mono float32 arrays the model takes.
SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Word:
    """One recognized word: ``word`` as the model spells it (leading space kept off), ``start``/``end``
    in seconds from the start of the audio, ``probability`` in 0..1."""

    word: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Segment:
    """A stretch of speech the model decoded as one piece (often one sentence): seconds from the start of
    the audio, the text, and its words (empty when word timestamps were not asked for)."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcript:
    """The result of one transcription: ``language`` (ISO 639-1, detected or given),
    ``language_probability`` (1.0 when given), ``duration`` of the audio in seconds, the segments in time
    order, and ``processing_seconds`` (wall time of the decode, for real-time factors)."""

    language: str
    language_probability: float
    duration: float
    segments: tuple[Segment, ...] = field(default_factory=tuple)
    processing_seconds: float = 0.0

    @property
    def text(self) -> str:
        """All segments' text joined by single spaces."""
        return " ".join(s.text for s in self.segments if s.text)


def load_model(model_dir: str | Path, cpu_threads: int = 0) -> Any:
    """Load a CTranslate2 Whisper model (int8 on the CPU) from a directory found by
    :func:`~herewith.speech.models.resolve_model`. ``cpu_threads`` 0: CTranslate2's default (all cores).

    Returns a ``faster_whisper.WhisperModel``. Blocking (about 1 s). Raises :class:`SpeechUnavailable`
    when faster-whisper is not installed or the directory holds no loadable model. Never downloads: the
    Hugging Face hub is switched off for this process.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:  # the optional extra is missing
        raise SpeechUnavailable(f"speech-to-text is not installed ({exc}): pip install -e '.[speech]'") from exc
    try:
        return WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=cpu_threads,
                            local_files_only=True)
    except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError for a bad model folder
        raise SpeechUnavailable(f"speech model in {str(model_dir)!r} cannot be loaded: {exc}") from exc


#: Stretches of speech decoded together in one clip of the original audio: at most this long (s, Whisper's window)
CLIP_SECONDS = 30.0
#: ... and with no more silence than this between two of them (s); a longer pause starts a new clip
CLIP_GAP_SECONDS = 5.0


def speech_clips(chunks: list[dict[str, int]], *, max_seconds: float = CLIP_SECONDS,
                 max_gap: float = CLIP_GAP_SECONDS) -> list[tuple[float, float]]:
    """Silero VAD's stretches of speech (``[{"start", "end"}]`` in samples at 16 kHz) grouped into clips of the
    original audio, ``[(start_s, end_s)]``: consecutive stretches share a clip while it stays within
    ``max_seconds`` and the silence between them within ``max_gap`` seconds."""
    clips: list[list[float]] = []
    for chunk in chunks:
        start, end = chunk["start"] / SAMPLE_RATE, chunk["end"] / SAMPLE_RATE
        if clips and start - clips[-1][1] <= max_gap and end - clips[-1][0] <= max_seconds:
            clips[-1][1] = end
        else:
            clips.append([start, end])
    return [(round(a, 3), round(b, 3)) for a, b in clips]


def transcribe_with(model: Any, audio: str | Path | np.ndarray, *, language: str | None = None,
                    word_timestamps: bool = True, vad: bool = True, beam_size: int = 1,
                    initial_prompt: str | None = None) -> Transcript:
    """Transcribe a file (any format ffmpeg/PyAV decodes: Opus, WAV, WebM...) or a mono float32 array at
    16 kHz with an already loaded model.

    ``language``: ISO 639-1 code, or None to detect it from the first 30 s. ``word_timestamps``: fill each
    segment's words. ``vad``: skip silence with the bundled Silero VAD first (timestamps stay relative to
    the whole audio), which also keeps Whisper from inventing words in long silences of a participant's
    own track. Blocking CPU work; runs in a worker process through :class:`SpeechEngine`.

    With ``vad`` the stretches of speech are decoded in clips of the original audio (:func:`speech_clips`,
    faster-whisper's ``clip_timestamps``), not cut out and joined end to end as faster-whisper's own
    ``vad_filter`` does: on a joined stream Whisper placed words across the cuts and mapping them back put them
    seconds off (seen: the first word of a sentence 4.6 s early, on a line of its own), and joining with
    silence between did not cure it (whole sentences then went missing). In a clip the times are the track's own.
    """
    import time

    from faster_whisper.audio import decode_audio
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    started = time.perf_counter()
    samples = audio if not isinstance(audio, (str, Path)) else decode_audio(str(audio), sampling_rate=SAMPLE_RATE)
    duration = len(samples) / SAMPLE_RATE
    clips: str | list[float] = "0"
    if vad:
        chunks = get_speech_timestamps(samples, VadOptions())
        if not chunks:
            return Transcript(language=language or "und", language_probability=0.0, duration=round(duration, 3),
                              processing_seconds=round(time.perf_counter() - started, 3))
        clips = [t for clip in speech_clips(chunks) for t in clip]
    segments, info = model.transcribe(
        samples, language=language, beam_size=beam_size, word_timestamps=word_timestamps, vad_filter=False,
        clip_timestamps=clips, condition_on_previous_text=False, initial_prompt=initial_prompt, temperature=0.0,
    )
    out = tuple(
        Segment(
            start=round(float(s.start), 3), end=round(float(s.end), 3), text=s.text.strip(),
            words=tuple(Word(w.word.strip(), round(float(w.start), 3), round(float(w.end), 3),
                             round(float(w.probability), 4)) for w in (s.words or ())),
        )
        for s in segments  # a generator: decoding happens here
    )
    return Transcript(
        language=info.language, language_probability=round(float(info.language_probability), 4),
        duration=round(duration, 3), segments=out,
        processing_seconds=round(time.perf_counter() - started, 3),
    )


# --- worker processes -------------------------------------------------------------------------------------

_worker_model: Any = None
_worker_error: str | None = None


def _exit_with_parent(parent: int, interval: float = 1.0) -> None:
    """End this worker when the process that started it is gone (a ``kill -9`` of the server): the pool's
    queues do not tell a worker, since it holds both ends of their pipes itself."""
    import signal
    import threading
    import time

    try:  # Linux: the kernel sends SIGKILL when the parent dies (no polling needed)
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it died before that took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _init_worker(model_dir: str, cpu_threads: int, parent: int) -> None:
    """Initializer of each pool worker: exit with the parent (``parent``: the pid of the process that made the
    pool, passed in since it may be gone by now), load the model once per process. A failure is kept and raised by each call (an initializer that raises would only break the pool, losing the reason)."""
    global _worker_model, _worker_error
    _exit_with_parent(parent)
    try:  # a worker is background work: let the server's own processes go first
        os.nice(5)
    except OSError:
        pass
    try:
        _worker_model = load_model(model_dir, cpu_threads)
    except SpeechUnavailable as exc:
        _worker_error = str(exc)


def _loaded_model() -> Any:
    if _worker_model is None:
        raise SpeechUnavailable(_worker_error or "speech worker has no model loaded")
    return _worker_model


def _worker_transcribe(audio: Any, kwargs: dict[str, Any]) -> Transcript:
    return transcribe_with(_loaded_model(), audio, **kwargs)


def _worker_ping() -> bool:
    _loaded_model()
    return True


class SpeechEngine:
    """A pool of worker processes that each hold one loaded model.

    ``model_dir``: a directory from :func:`~herewith.speech.models.resolve_model`; ``workers``: processes
    (each decodes one audio at a time; about 150-350 MB of memory each); ``cpu_threads``: CTranslate2
    threads per worker (0: the cores divided among the workers). Methods raise :class:`SpeechUnavailable`
    when the model cannot be loaded or a worker died (the pool is rebuilt on the next call).
    """

    def __init__(self, model_dir: str | Path, *, workers: int = 1, cpu_threads: int = 0) -> None:
        self.model_dir = Path(model_dir)
        self.workers = max(1, workers)
        self.cpu_threads = cpu_threads or max(1, (os.cpu_count() or 1) // self.workers)
        self._pool: ProcessPoolExecutor | None = None
        self._lock = asyncio.Lock()

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the server process runs threads and an event loop that a fork would copy
        return ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(str(self.model_dir), self.cpu_threads, os.getpid()),
        )

    async def start(self) -> None:
        """Start the workers and wait until one has loaded the model (raises SpeechUnavailable if not)."""
        async with self._lock:
            if self._pool is None:
                self._pool = self._new_pool()
        await self._submit(_worker_ping)

    async def _submit(self, fn: Any, *args: Any) -> Any:
        async with self._lock:
            if self._pool is None:
                self._pool = self._new_pool()
            pool = self._pool
        try:
            return await asyncio.wrap_future(pool.submit(fn, *args))
        except BrokenProcessPool as exc:
            async with self._lock:
                if self._pool is pool:
                    self._pool = None
            await asyncio.to_thread(pool.shutdown, wait=False, cancel_futures=True)
            raise SpeechUnavailable(
                f"speech worker process died (model {str(self.model_dir)!r} could not load or ran out of memory)"
            ) from exc

    async def transcribe(self, audio: str | Path | np.ndarray, *, language: str | None = None,
                         word_timestamps: bool = True, vad: bool = True, beam_size: int = 1,
                         initial_prompt: str | None = None) -> Transcript:
        """Transcribe in a worker process; arguments as :func:`transcribe_with`. A file path is read by the
        worker (pass paths, not bytes, for recordings)."""
        kwargs = dict(language=language, word_timestamps=word_timestamps, vad=vad, beam_size=beam_size,
                      initial_prompt=initial_prompt)
        return await self._submit(_worker_transcribe, str(audio) if isinstance(audio, Path) else audio, kwargs)

    async def close(self) -> None:
        """Stop the workers (a decode in progress is abandoned)."""
        async with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
