"""The transcript file: Markdown with one line per utterance, ``[hh:mm:ss] Display Name: words``.

Each participant's own audio track of a recording is transcribed on its own, so every utterance knows its
speaker without guessing (no diarization); the utterances of all tracks are merged by start time.

Usage::

    utterances = [Utterance(1.2, "Alice", "Good morning."), Utterance(3.0, "Bob", "Hi Alice.")]
    text = render_markdown("/room-1", started_at, "en", utterances)
    assert parse_markdown(text) == utterances     # up to whole seconds
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from herewith.kit.time import format_utc
from herewith.speech.engine import Segment, Word

#: One utterance line of a transcript: ``[hh:mm:ss] Speaker: words``.
LINE = re.compile(r"^\[(\d{2,}):(\d{2}):(\d{2})\] ([^:\n]+?): (.+)$")
_SPEAKER_UNSAFE = re.compile(r"[:\r\n\[\]]+")


@dataclass(frozen=True)
class Utterance:
    """What one participant said in one go: ``start`` in seconds from the start of the transcript,
    ``speaker`` their display name, ``text`` the words (one line, no line breaks)."""

    start: float
    speaker: str
    text: str


def timestamp(seconds: float) -> str:
    """``[hh:mm:ss]`` for a non-negative number of seconds (rounded down)."""
    total = max(0, int(seconds))
    return f"[{total // 3600:02d}:{total // 60 % 60:02d}:{total % 60:02d}]"


def clean_speaker(name: str | None, fallback: str = "Participant") -> str:
    """A display name fit for a transcript line: no ``:``, brackets or line breaks; ``fallback`` when empty."""
    cleaned = _SPEAKER_UNSAFE.sub(" ", name or "").strip()
    return " ".join(cleaned.split())[:100] or fallback


#: Silence between two words, in seconds, that ends one utterance and starts the next.
PAUSE_SECONDS = 1.0


def utterances_of(segments: Iterable[Segment], speaker: str, offset: float = 0.0,
                  pause: float = PAUSE_SECONDS) -> list[Utterance]:
    """One participant's decoded segments (:class:`herewith.speech.engine.Segment`, times in seconds of their
    own track) as utterances of ``speaker``, ``offset`` seconds added (where their track starts in the
    transcript).

    The words are regrouped at pauses of at least ``pause`` seconds, and each utterance starts at its first
    word: Whisper's segments can hold two utterances said seconds apart, and with the voice-activity filter a
    segment's own start can be off by the silence that was cut out before decoding (seen: 5 s), while word
    timestamps are placed on the track's own timeline. Segments without words are taken whole."""
    out: list[Utterance] = []
    for seg in segments:
        if not seg.words:
            if seg.text.strip():
                out.append(Utterance(offset + seg.start, speaker, " ".join(seg.text.split())))
            continue
        group: list[Word] = []
        for word in seg.words:
            if group and word.start - group[-1].end >= pause:
                out.append(_utterance(group, speaker, offset))
                group = []
            group.append(word)
        out.append(_utterance(group, speaker, offset))
    return [u for u in out if u.text]


def _utterance(words: list[Word], speaker: str, offset: float) -> Utterance:
    return Utterance(offset + words[0].start, speaker, " ".join(w.word.strip() for w in words if w.word.strip()))


def merge(utterances: Iterable[Utterance]) -> list[Utterance]:
    """All utterances by start time (stable for equal starts), blank ones dropped."""
    return sorted((u for u in utterances if u.text.strip()), key=lambda u: u.start)


def render_markdown(room_name: str, started_at: datetime, language: str | None, utterances: Iterable[Utterance],
                    title: str = "Transcript") -> str:
    """The transcript file: a heading, a line of facts (room, start in UTC, language, speakers), a blank line,
    then one ``[hh:mm:ss] Speaker: words`` line per utterance in time order."""
    lines = merge(utterances)
    speakers = list(dict.fromkeys(u.speaker for u in lines))
    out = [f"# {title} of {room_name}", "",
           f"Started {format_utc(started_at)}; language: {language or 'unknown'}; "
           f"speakers: {', '.join(speakers) if speakers else 'none'}", ""]
    out += [f"{timestamp(u.start)} {clean_speaker(u.speaker)}: {' '.join(u.text.split())}" for u in lines]
    return "\n".join(out) + "\n"


def parse_markdown(text: str) -> list[Utterance]:
    """The utterance lines of a transcript file (other lines are ignored); ``start`` in whole seconds."""
    found = []
    for line in text.splitlines():
        m = LINE.match(line.strip())
        if m:
            h, mi, s, speaker, words = m.groups()
            found.append(Utterance(int(h) * 3600 + int(mi) * 60 + int(s), speaker.strip(), words.strip()))
    return found
