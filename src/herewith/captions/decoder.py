"""Whisper decodes for live captions, in worker processes (never on an event loop).

:class:`DecoderPool` runs ``workers`` processes (``concurrent.futures.ProcessPoolExecutor``, spawned, so no
event-loop or aiortc state is forked into them); each loads the live model once
(:func:`herewith.speech.load_model`, from the directory :func:`herewith.speech.resolve_model` found) and
decodes one utterance at a time with greedy search, no timestamps, no temperature fallback and no
conditioning on earlier text: each decode of a growing utterance must stand on its own for LocalAgreement,
and must cost the same every time (the speech engine's ``transcribe_with`` is made for whole recordings:
word timestamps, fallbacks and VAD, which a one-second cadence cannot afford).

Usage::

    pool = DecoderPool(model_dir, workers=2, language="en")
    words, cpu = await pool.decode(pcm)  # float32 16 kHz mono -> ["Hello,", "world."], CPU seconds
    pool.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

_model: Any = None
_language: str | None = None


def _init_worker(model_dir: str, language: str | None, threads: int) -> None:
    """Runs once in each worker: load the CTranslate2 Whisper model (int8 on the CPU)."""
    global _model, _language
    os.nice(5)  # captions yield the CPU to the call's own processes (Janus, the server) when it is short
    from faster_whisper import WhisperModel

    _model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads, num_workers=1)
    _language = language
    _decode(np.zeros(8000, np.float32))  # the first decode pays for lazy initialization: not a caption's


def _decode(pcm: np.ndarray) -> tuple[list[str], float]:
    """Words of ``pcm`` (float32, 16 kHz mono), with their punctuation, in order, and the CPU seconds the
    decode took in this worker."""
    started = time.process_time()
    language = _language
    segments, _info = _model.transcribe(
        pcm, language=language, beam_size=1, best_of=1, temperature=0.0, without_timestamps=True,
        condition_on_previous_text=False, vad_filter=False, word_timestamps=False,
    )
    words: list[str] = []
    for segment in segments:
        if segment.no_speech_prob > 0.8 and segment.avg_logprob < -1.0:
            continue  # Whisper's "nothing said here": no invented words on a cough or a door
        words.extend(segment.text.split())
    return words, time.process_time() - started


class DecoderPool:
    """``workers`` decoding processes for one model and language (see the module doc). ``free`` is how many
    could take a decode now; :meth:`decode` never queues beyond the workers (the caller picks what runs)."""

    def __init__(self, model_dir: str, workers: int = 1, language: str | None = None, threads: int = 1) -> None:
        self.workers = max(1, workers)
        self._busy = 0
        self._executor = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(model_dir, language, threads),
        )

    @property
    def free(self) -> int:
        return self.workers - self._busy

    async def warm_up(self) -> None:
        """Start every worker and load its model (seconds); returns when all can decode."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, _decode, np.zeros(1600, np.float32))
                               for _ in range(self.workers)))

    def decode(self, pcm: np.ndarray) -> asyncio.Future[tuple[list[str], float]]:
        """Start decoding ``pcm`` on a free worker (it is taken at once, so :attr:`free` counts it);
        the future's result is the words and the decode's CPU seconds. Raises RuntimeError when no worker is free (callers check
        :attr:`free` first: nothing queues here)."""
        if self._busy >= self.workers:
            raise RuntimeError("no free decoder")
        self._busy += 1
        future = asyncio.get_running_loop().run_in_executor(self._executor, _decode, pcm)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: asyncio.Future[tuple[list[str], float]]) -> None:
        self._busy -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
