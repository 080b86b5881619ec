"""Speech-to-text benchmark: word error rate and real-time factor of batch transcription.

What a stored transcript costs on this machine (herewith.speech: faster-whisper, int8 on the CPU, the
speech worker's settings: beam 1, Silero VAD, word timestamps), for the models ``base`` and ``tiny.en``:

* **real human speech**: ``bench/fixtures/two_cities_16k.wav`` (44 s, the opening of *A Tale of Two Cities*,
  public domain; source in bench/fixtures/README.md) against the book's text;
* **synthetic speech**: a 140-word meeting spoken by espeak-ng at run time (needs the ``espeak-ng`` Debian
  package), against its script.

Per model and audio: the median over ``--runs`` decodes (after one warm-up) of the processing time, the
real-time factor (processing time / audio duration; lower is faster), the WER (jiwer, lowercase, punctuation
removed), and the ratio of each model's processing time to ``tiny.en``'s on the same audio, measured in the
same run (the machine is shared; ratios move less than absolute times). Targets: RTF <= 0.1 with base, WER
<= 5 % on the real recording.

The script is modular: each part is a function registered in ``PARTS`` (``batch`` here; live caption
latency is another part) writing its own key of the results file.

    .venv/bin/python bench/stt.py [--parts batch] [--runs 3] [--threads 2]

Prints the figures and writes bench/results/stt.json (machine, date, load average before and after, figures).
Needs the speech extra (pip install -e '.[speech]').
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "stt.json"
REAL_SPEECH = ROOT / "bench" / "fixtures" / "two_cities_16k.wav"
REAL_REFERENCE = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it "
    "was the season of Darkness, it was the spring of hope, it was the winter of despair, we had everything "
    "before us, we had nothing before us, we were all going direct to Heaven, we were all going direct the "
    "other way, in short, the period was so far like the present period, that some of its noisiest "
    "authorities insisted on its being received, for good or for evil, in the superlative degree of "
    "comparison only."
)
SYNTHETIC_SCRIPT = (
    "Good morning everyone, thanks for joining the weekly project meeting. First item on the agenda is the "
    "budget review. Sarah reported that marketing spent more than planned last month. John suggested that we "
    "move money from the travel budget to cover the difference. Everyone agreed. The second item is the "
    "product launch. The engineering team finished the new login page and the payment integration. Testing "
    "will start on Monday and should take two weeks. Maria is worried that the mobile app is not ready, "
    "because three critical bugs are still open. We decided to delay the mobile release by one week. Action "
    "items: John will update the budget spreadsheet by Friday. Maria will send the bug report to the whole "
    "team. We will meet again on Tuesday morning."
)
MODELS = ("base", "tiny.en")


def normalize(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower().replace("-", " ")))


def wer(reference: str, hypothesis: str) -> float:
    import jiwer

    return float(jiwer.wer(normalize(reference), normalize(hypothesis)))


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def synthetic_speech(work: Path) -> Path:
    raw, out = work / "meeting.raw.wav", work / "meeting16.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(raw), SYNTHETIC_SCRIPT], check=True, timeout=60)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(raw), "-ar", "16000", "-ac", "1",
                    "-sample_fmt", "s16", str(out)], check=True, timeout=60)
    return out


def measure(model: Any, audio: Path, reference: str, runs: int) -> dict[str, Any]:
    """Median processing time, RTF and WER of ``runs`` decodes of ``audio`` (one warm-up first)."""
    from herewith.speech import transcribe_with

    transcribe_with(model, audio, language="en")  # warm-up: first-call allocations, page cache
    times, text, duration = [], "", 0.0
    for _ in range(runs):
        started = time.perf_counter()
        transcript = transcribe_with(model, audio, language="en")
        times.append(time.perf_counter() - started)
        text, duration = transcript.text, transcript.duration
    median = statistics.median(times)
    return {"audio_seconds": round(duration, 2), "processing_seconds": [round(t, 3) for t in times],
            "median_seconds": round(median, 3), "rtf": round(median / duration, 4),
            "wer": round(wer(reference, text), 4), "hypothesis": text}


def run_batch(args: argparse.Namespace) -> dict[str, Any]:
    """WER and RTF of base and tiny.en on the real and the synthetic speech."""
    from herewith.speech import load_model, resolve_model

    cache = Path(tempfile.gettempdir()) / "herewith-bench-models"
    with tempfile.TemporaryDirectory() as tmp:
        audios = {"real_two_cities": (REAL_SPEECH, REAL_REFERENCE),
                  "synthetic_espeak_meeting": (synthetic_speech(Path(tmp)), SYNTHETIC_SCRIPT)}
        figures: dict[str, Any] = {}
        for name in MODELS:
            started = time.perf_counter()
            model = load_model(resolve_model(name, cache), cpu_threads=args.threads)
            load_seconds = round(time.perf_counter() - started, 2)
            figures[name] = {"load_seconds": load_seconds}
            for key, (audio, reference) in audios.items():
                figures[name][key] = measure(model, audio, reference, args.runs)
                f = figures[name][key]
                print(f"{name:8s} {key:26s} rtf {f['rtf']:.3f}  wer {100 * f['wer']:.1f} %  "
                      f"median {f['median_seconds']:.2f} s of {f['audio_seconds']:.1f} s", flush=True)
            del model
    for key in audios:
        base, tiny = figures["base"][key]["median_seconds"], figures["tiny.en"][key]["median_seconds"]
        figures["base"][key]["time_vs_tiny_en"] = round(base / tiny, 2) if tiny else None
    figures["targets"] = {
        "base_rtf_le_0.1": all(figures["base"][k]["rtf"] <= 0.1 for k in audios),
        "base_wer_le_5pct_real": figures["base"]["real_two_cities"]["wer"] <= 0.05,
    }
    return figures


#: The parts of this benchmark: name -> function(args) -> figures (stored under that name).
PARTS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {"batch": run_batch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="batch", help=f"comma-separated, of: {', '.join(PARTS)}")
    parser.add_argument("--runs", type=int, default=3, help="decodes per model and audio (after a warm-up)")
    parser.add_argument("--threads", type=int, default=2, help="CTranslate2 CPU threads")
    args = parser.parse_args()
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for part in [p.strip() for p in args.parts.split(",") if p.strip()]:
        before = load_average()
        figures = PARTS[part](args)
        results[part] = {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
            "load_average_before": before, "load_average_after": load_average(),
            "parameters": {"runs": args.runs, "threads": args.threads, "compute_type": "int8", "beam_size": 1,
                           "vad": True, "word_timestamps": True},
            "figures": figures,
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
