"""Voice activity detection: the Silero VAD model that ships inside the faster-whisper wheel
(``faster_whisper/assets/silero_vad_v6.onnx``, run by onnxruntime), and audio decoding to the model's
input (mono float32 at 16 kHz, through PyAV).

Usage::

    samples = decode_audio("alice.opus")                      # numpy float32, 16 kHz
    for start, end in speech_spans(samples):                  # seconds
        ...
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from herewith.speech.engine import SAMPLE_RATE
from herewith.speech.errors import SpeechUnavailable

if TYPE_CHECKING:
    import numpy as np


def _faster_whisper():
    try:
        import faster_whisper.audio
        import faster_whisper.vad
    except ImportError as exc:
        raise SpeechUnavailable(f"speech-to-text is not installed ({exc}): pip install -e '.[speech]'") from exc
    return faster_whisper


def decode_audio(path: str | Path) -> np.ndarray:
    """Decode any audio file PyAV/ffmpeg reads (Opus, WebM, WAV...) to mono float32 at 16 kHz."""
    return _faster_whisper().audio.decode_audio(str(path), sampling_rate=SAMPLE_RATE)


def speech_spans(samples: np.ndarray, *, threshold: float = 0.5, min_silence_ms: int = 500,
                 min_speech_ms: int = 250, speech_pad_ms: int = 200) -> list[tuple[float, float]]:
    """Where ``samples`` (mono float32, 16 kHz) hold speech: ``(start, end)`` pairs in seconds, in order.

    ``threshold``: Silero speech probability above which a 32 ms frame is speech; ``min_silence_ms``: a
    pause this long ends an utterance; ``min_speech_ms``: shorter bursts are dropped; ``speech_pad_ms``:
    added on both sides. Blocking CPU work (about 1 ms per second of audio).
    """
    fw = _faster_whisper()
    options = fw.vad.VadOptions(threshold=threshold, min_silence_duration_ms=min_silence_ms,
                                min_speech_duration_ms=min_speech_ms, speech_pad_ms=speech_pad_ms)
    spans = fw.vad.get_speech_timestamps(samples, options, sampling_rate=SAMPLE_RATE)
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in spans]


def silero_vad_model():
    """The Silero VAD model object faster-whisper caches (``faster_whisper.vad.get_vad_model()``), for a
    caller that feeds it frames itself (live captions): call it as ``model(frames_512_samples)``."""
    return _faster_whisper().vad.get_vad_model()
