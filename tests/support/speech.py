"""Synthetic speech for tests: espeak-ng (Debian package, scripts/setup-system.sh) speaking known text into a
WAV at test time, and the word error rate of a transcript against that text (jiwer, from the speech extra's
test needs).

Usage::

    path = espeak_wav("we will meet again on tuesday", tmp_path / "a.wav", voice="en-us", rate=150)
    assert word_error_rate("we will meet again on tuesday", transcript_text) <= 0.15
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path


def espeak_wav(text: str, path: Path, *, voice: str = "en-us", rate: int = 150, pitch: int = 50,
               sample_rate: int | None = None, lead_silence_s: float = 0.0, tail_silence_s: float = 0.0) -> Path:
    """Speak ``text`` into ``path`` (WAV, mono s16). ``rate``: words per minute; ``sample_rate``: resample
    with ffmpeg (espeak-ng writes 22050 Hz); ``lead_silence_s``/``tail_silence_s``: silence padded before
    and after (ffmpeg ``adelay``/``apad``). Raises RuntimeError when espeak-ng is missing."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (scripts/setup-system.sh installs it)")
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(raw), text],
                   check=True, timeout=60, capture_output=True)
    filters = []
    if lead_silence_s:
        ms = int(lead_silence_s * 1000)
        filters.append(f"adelay={ms}:all=1")
    if tail_silence_s:
        filters.append(f"apad=pad_dur={tail_silence_s}")
    if not filters and sample_rate is None:
        raw.rename(path)
        return path
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(raw)]
    if filters:
        cmd += ["-af", ",".join(filters)]
    if sample_rate:
        cmd += ["-ar", str(sample_rate)]
    cmd += ["-ac", "1", "-sample_fmt", "s16", str(path)]
    subprocess.run(cmd, check=True, timeout=60, capture_output=True)
    raw.unlink(missing_ok=True)
    return path


def normalize_words(text: str) -> str:
    """Lowercase, punctuation dropped, whitespace collapsed: the form WER is scored on."""
    text = text.lower().replace("-", " ")
    return " ".join(re.findall(r"[a-z0-9']+", text))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER of ``hypothesis`` against ``reference`` on :func:`normalize_words` forms (jiwer)."""
    import jiwer

    return float(jiwer.wer(normalize_words(reference), normalize_words(hypothesis)))


def speech_track(parts: list[tuple[float, str]], path: Path, *, total_s: float | None = None, voice: str = "en-us",
                 rate: int = 150, pitch: int = 50, sample_rate: int = 48000) -> Path:
    """One participant's audio: each ``(start_s, text)`` spoken by espeak-ng from ``start_s`` seconds on,
    silence between, mixed into ``path`` (``.wav``: PCM s16 mono; ``.webm``: Opus, as a recording's
    per-participant track). ``total_s``: pad with silence to this length."""
    work = path.parent / f".{path.stem}-parts"
    work.mkdir(parents=True, exist_ok=True)
    inputs: list[str] = []
    filters: list[str] = []
    for i, (start, text) in enumerate(parts):
        wav = espeak_wav(text, work / f"{i}.wav", voice=voice, rate=rate, pitch=pitch)
        inputs += ["-i", str(wav)]
        filters.append(f"[{i}]aresample={sample_rate},adelay={int(start * 1000)}:all=1[p{i}]")
    mix = "".join(f"[p{i}]" for i in range(len(parts)))
    graph = ";".join(filters) + f";{mix}amix=inputs={len(parts)}:normalize=0:duration=longest"
    if total_s:
        graph += f",apad=whole_dur={total_s}"
    codec = ["-c:a", "libopus", "-b:a", "48k"] if path.suffix == ".webm" else ["-c:a", "pcm_s16le"]
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *inputs, "-filter_complex", graph,
                    "-ac", "1", "-ar", str(sample_rate), *codec, str(path)], check=True, timeout=120, capture_output=True)
    shutil.rmtree(work, ignore_errors=True)
    return path
