"""The speech engine as transcriptions use it: resolved once, started on first use, answering clear errors.

Built once by the wiring (``app.py``) from the settings ``stt_model``, ``stt_workers`` and
``stt_cpu_threads``. :meth:`Transcriber.check` is what ``POST /v1/transcriptions`` asks before it accepts a
job: without the ``speech`` extra or with an unusable model it raises :class:`SpeechNotAvailable`, a 503
in the contract's error body.

Usage::

    transcriber = Transcriber(settings)
    await transcriber.check()                                # 503 SpeechNotAvailable if it cannot run
    transcript = await transcriber.transcribe(path, "en")    # in a worker process
    await transcriber.close()
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from herewith.config import Settings
from herewith.errors import HerewithError
from herewith.speech import SpeechEngine, SpeechUnavailable, Transcript, is_english_only, resolve_model

log = structlog.get_logger(__name__)


class SpeechNotAvailable(HerewithError):
    """503: speech-to-text cannot run on this server; ``data.reason`` says why and what to install."""

    status = 503
    message = "Speech-to-text is not available on this server"


class Transcriber:
    """Holds the :class:`~herewith.speech.SpeechEngine` of this process (started lazily: the model's worker
    processes cost memory only once a transcription runs)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._model_dir: Path | None = None
        self._engine: SpeechEngine | None = None
        self._lock = asyncio.Lock()
        self.english_only = is_english_only(settings.stt_model)

    async def model_dir(self) -> Path:
        """The model directory (resolved once, in a thread: it may join and hash 145 MB). Raises
        :class:`SpeechNotAvailable`."""
        if self._model_dir is None:
            async with self._lock:
                if self._model_dir is None:
                    try:
                        self._model_dir = await asyncio.to_thread(
                            resolve_model, self._settings.stt_model, self._settings.data_dir / "models")
                    except SpeechUnavailable as exc:
                        raise SpeechNotAvailable(data={"reason": str(exc)}) from None
        return self._model_dir

    async def check(self) -> None:
        """Raise :class:`SpeechNotAvailable` (503) unless a transcription could run here."""
        await self.model_dir()

    async def _engine_started(self) -> SpeechEngine:
        model_dir = await self.model_dir()
        async with self._lock:
            if self._engine is None:
                self._engine = SpeechEngine(model_dir, workers=self._settings.stt_workers,
                                            cpu_threads=self._settings.stt_cpu_threads)
            return self._engine

    async def transcribe(self, audio: Path, language: str | None) -> Transcript:
        """Transcribe one audio file in a worker process, with word timestamps and VAD; ``language`` None:
        detected (``en`` with an English-only model). Raises SpeechNotAvailable, or SpeechUnavailable when a
        worker died."""
        engine = await self._engine_started()
        if self.english_only:
            language = "en"
        return await engine.transcribe(audio, language=language)

    async def close(self) -> None:
        async with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            await engine.close()
