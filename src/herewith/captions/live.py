"""Live captions of one audio track: utterances found by VAD, re-decoded about every second, committed by
LocalAgreement-2, and the order in which tracks get the decoder when the CPU is short.

This module holds no model and does no I/O: the captioner (:mod:`herewith.captions.captioner`) feeds it 16 kHz
mono float32 samples and voice probabilities (Silero VAD, one per 512-sample window), asks it which decode to
run next, and hands back the decoder's words. The pattern is the one of ``whisper_streaming`` (Machacek et al.,
"Turning Whisper into Real-Time Transcription System", 2023), described in the issue and in the research note
on offline speech-to-text: Whisper has no streaming mode, so the open utterance is decoded again and again, and
a word is committed once two consecutive decodes agree on it (LocalAgreement-2).

Rules (times in seconds of audio, at :data:`SAMPLE_RATE`):

- an utterance starts at the first window whose voice probability is >= ``threshold`` (with ``PRE_ROLL`` of
  the audio before it) and ends after ``end_silence`` below ``threshold - 0.15`` (hysteresis);
- while it is open, a decode is due every ``cadence`` once ``min_new`` of audio came since the last one; its
  words give a *partial* caption: the committed words, then the rest of the newest hypothesis;
- when it ends (or reaches ``max_utterance``, or the track stops) a last decode of the whole utterance gives
  the *final* caption;
- :func:`pick_next` gives the decoder to finals first (oldest first), then to the speakers heard most
  recently, each at most one partial in flight (the captioner keeps one of several workers for finals): with more speakers than the CPU sustains, partials come less often
  and the quiet tracks wait; audio is never queued beyond ``max_utterance`` per track (a longer utterance is
  cut and finalized), and the call itself never waits for any of this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 16_000
VAD_WINDOW = 512  # samples per Silero VAD probability (32 ms)
PRE_ROLL = 0.3  # seconds of audio kept before the first voiced window
_NORM = re.compile(r"[^\w']+")


def normalize_word(word: str) -> str:
    """A word as LocalAgreement compares it: lower case, without punctuation (``"Budget,"`` == ``"budget"``)."""
    return _NORM.sub("", word.lower())


def agreed_prefix(previous: list[str], current: list[str]) -> int:
    """How many leading words two consecutive hypotheses share (compared by :func:`normalize_word`)."""
    n = 0
    for a, b in zip(previous, current, strict=False):
        if normalize_word(a) != normalize_word(b):
            break
        n += 1
    return n


@dataclass(frozen=True)
class Decode:
    """One decode to run: ``pcm`` (float32, 16 kHz mono) of utterance ``utterance_id`` of ``track_id``;
    ``final``: its last one. ``seq`` tells a result from the ones before it."""

    track_id: str
    utterance_id: str
    pcm: np.ndarray
    final: bool
    seq: int
    speech_end: float | None = None  # when (the captioner's clock) the utterance's speech ended, for finals


@dataclass(frozen=True)
class Caption:
    """A caption to send: the words of ``utterance_id`` so far (``final`` false) or as committed (true)."""

    track_id: str
    utterance_id: str
    text: str
    final: bool
    speech_end: float | None = None


@dataclass
class TrackCaptions:
    """The live-caption state of one participant's audio track (see the module doc for the rules).

    ``feed(pcm, probs, now)`` appends audio (a multiple of :data:`VAD_WINDOW` samples) and its voice
    probabilities; ``next_decode(now)`` returns the due :class:`Decode` or None and marks it in flight;
    ``result(decode, words)`` applies the decoder's words and returns the :class:`Caption` to send (or None);
    ``close(now)`` ends the open utterance (the participant left).
    """

    track_id: str
    cadence: float = 1.0
    min_new: float = 0.5
    end_silence: float = 0.5
    max_utterance: float = 15.0
    threshold: float = 0.5
    _pre: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    _chunks: list[np.ndarray] = field(default_factory=list)
    _samples: int = 0
    _silence: int = 0
    speaking: bool = False
    utterance: int = 0
    last_voice: float = -1.0  # when voice was last heard (captioner clock), for "active speakers first"
    _decoded_samples: int = 0
    _last_decode: float = 0.0
    _in_flight: bool = False  # a partial decode runs
    _finals_in_flight: int = 0
    _seq: int = 0
    _previous: list[str] = field(default_factory=list)
    _committed: list[str] = field(default_factory=list)
    _finals: list[tuple[str, np.ndarray, float]] = field(default_factory=list)  # (utterance id, pcm, speech end)

    @property
    def utterance_id(self) -> str:
        return f"{self.track_id}.{self.utterance}"

    @property
    def busy(self) -> bool:
        """A decode of this track runs (a partial, or a final)."""
        return self._in_flight or self._finals_in_flight > 0

    def pending_final_since(self) -> float | None:
        """When the oldest utterance waiting for its final decode ended, or None."""
        return self._finals[0][2] if self._finals else None

    def _audio(self) -> np.ndarray:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.zeros(0, np.float32)

    def feed(self, pcm: np.ndarray, probs: np.ndarray, now: float) -> None:
        """Append ``pcm`` (float32, ``len(probs) * VAD_WINDOW`` samples) heard at ``now``."""
        low = self.threshold - 0.15
        pre_max = int(PRE_ROLL * SAMPLE_RATE)
        for i, prob in enumerate(probs):
            window = pcm[i * VAD_WINDOW:(i + 1) * VAD_WINDOW]
            if not self.speaking:
                if prob >= self.threshold:
                    self.speaking = True
                    self.utterance += 1
                    self._chunks = [self._pre[-pre_max:], window]
                    self._samples = len(self._chunks[0]) + len(window)
                    self._silence = 0
                    self._decoded_samples = 0
                    self._previous, self._committed = [], []
                    self._last_decode = now
                    self.last_voice = now
                else:
                    self._pre = np.concatenate([self._pre[-pre_max:], window])
                continue
            self._chunks.append(window)
            self._samples += len(window)
            if prob >= low:
                self._silence = 0
                self.last_voice = now
            else:
                self._silence += len(window)
            if self._silence >= self.end_silence * SAMPLE_RATE:
                self._end(now)
            elif self._samples >= self.max_utterance * SAMPLE_RATE:
                self._end(now)

    def _end(self, now: float) -> None:
        """The open utterance is over: queue its final decode (without the trailing silence)."""
        audio = self._audio()
        keep = max(0, len(audio) - max(0, self._silence - int(0.2 * SAMPLE_RATE)))
        speech_end = now - self._silence / SAMPLE_RATE
        self._finals.append((self.utterance_id, audio[:keep].copy(), speech_end))
        self.speaking = False
        self._chunks, self._samples, self._silence = [], 0, 0
        self._pre = np.zeros(0, np.float32)

    def close(self, now: float) -> None:
        """The track ended: the open utterance gets its final decode."""
        if self.speaking:
            self._end(now)

    def next_decode(self, now: float) -> Decode | None:
        """The decode this track wants now (a final first, else a partial when one is due), or None. A final
        does not wait for a partial in flight (that partial's words are dropped when they come)."""
        if self._finals:
            utterance_id, pcm, speech_end = self._finals.pop(0)
            self._finals_in_flight += 1
            self._seq += 1
            return Decode(self.track_id, utterance_id, pcm, True, self._seq, speech_end)
        if self._in_flight or not self.speaking:
            return None
        new = self._samples - self._decoded_samples
        if now - self._last_decode < self.cadence or new < self.min_new * SAMPLE_RATE:
            return None
        self._in_flight = True
        self._seq += 1
        self._decoded_samples = self._samples
        self._last_decode = now
        return Decode(self.track_id, self.utterance_id, self._audio().copy(), False, self._seq)

    def partial_due_since(self, now: float) -> float | None:
        """How long a partial has been due (seconds, >= 0) or None when none is."""
        if self._in_flight or not self.speaking or self._samples - self._decoded_samples < self.min_new * SAMPLE_RATE:
            return None
        due = now - self._last_decode - self.cadence
        return due if due >= 0 else None

    def failed(self, decode: Decode) -> None:
        """The decoder failed or dropped ``decode``: the track may ask again."""
        if decode.final:
            self._finals_in_flight -= 1
        else:
            self._in_flight = False

    def result(self, decode: Decode, words: list[str]) -> Caption | None:
        """Apply the decoder's ``words`` for ``decode``: the final caption, a partial with the words two
        decodes agreed on committed, or None (nothing said, or a partial of an utterance that is over)."""
        if decode.final:
            self._finals_in_flight -= 1
            text = " ".join(words).strip()
            return Caption(self.track_id, decode.utterance_id, text, True, decode.speech_end) if text else None
        self._in_flight = False
        if decode.utterance_id != self.utterance_id or not self.speaking:
            return None  # the utterance ended meanwhile: its final decode says it all
        # LocalAgreement-2: past the committed words, what two consecutive decodes agree on is committed too;
        # committed words are never taken back, whatever a later decode makes of them.
        done = len(self._committed)
        agreed = agreed_prefix(self._previous[done:], words[done:])
        if agreed:
            self._committed = self._committed + words[done:done + agreed]
        self._previous = words
        shown = self._committed + words[len(self._committed):]
        text = " ".join(shown).strip()
        return Caption(self.track_id, decode.utterance_id, text, False) if text else None

    @property
    def committed(self) -> list[str]:
        return list(self._committed)


def pick_next(tracks: list[TrackCaptions], now: float, finals_only: bool = False) -> Decode | None:
    """The next decode for a free worker: the oldest pending final, else (unless ``finals_only``) the partial
    of the speaker heard most recently among those due (ties: the longest due). None when nothing is due."""
    finals = [(t.pending_final_since(), t) for t in tracks if t.pending_final_since() is not None]
    if finals:
        finals.sort(key=lambda x: x[0])  # type: ignore[arg-type, return-value]
        return finals[0][1].next_decode(now)
    if finals_only:
        return None
    due = [(t, t.partial_due_since(now)) for t in tracks]
    ready = [(t, d) for t, d in due if d is not None]
    if not ready:
        return None
    ready.sort(key=lambda x: (-round(x[0].last_voice, 1), -x[1]))
    return ready[0][0].next_decode(now)
