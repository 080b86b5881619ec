"""From a participant's decoded segments to transcript utterances (herewith.transcriptions.transcript)."""

from __future__ import annotations

from datetime import UTC, datetime

from herewith.speech.engine import Segment, Word
from herewith.transcriptions.transcript import Utterance, parse_markdown, render_markdown, utterances_of


def words(*spec: tuple[str, float, float]) -> tuple[Word, ...]:
    return tuple(Word(w, start, end, 0.9) for w, start, end in spec)


def test_a_segment_holding_two_utterances_is_split_at_the_pause_and_each_starts_at_its_first_word() -> None:
    # what Whisper gave for a looped sentence: one segment from 12.0 s holding the end of one utterance
    # and, after 6 s of silence, the start of the next
    seg = Segment(12.0, 21.0, "the payment integration. Good morning",
                  words(("the", 14.1, 14.3), ("payment", 14.3, 14.8), ("integration.", 14.8, 15.6),
                        ("Good", 21.5, 21.8), ("morning", 21.8, 22.3)))
    assert utterances_of([seg], "Bob", offset=2.0) == [
        Utterance(16.1, "Bob", "the payment integration."), Utterance(23.5, "Bob", "Good morning")]


def test_short_pauses_stay_in_one_utterance_and_wordless_segments_are_kept_whole() -> None:
    seg = Segment(1.0, 3.0, "Hi there Alice", words(("Hi", 1.2, 1.4), ("there", 1.9, 2.2), ("Alice", 2.5, 3.0)))
    bare = Segment(5.0, 6.0, "  Thanks  all ")
    empty = Segment(7.0, 8.0, "", words(("", 7.1, 7.2)))
    assert utterances_of([seg, bare, empty], "Alice") == [
        Utterance(1.2, "Alice", "Hi there Alice"), Utterance(5.0, "Alice", "Thanks all")]


def test_the_utterances_of_two_tracks_render_in_time_order() -> None:
    alice = utterances_of([Segment(0.0, 2.0, "Good morning", words(("Good", 0.5, 0.8), ("morning", 0.8, 1.3)))],
                          "Alice", offset=0.0)
    bob = utterances_of([Segment(0.0, 1.0, "Hello", words(("Hello", 0.2, 0.6)))], "Bob", offset=3.0)
    text = render_markdown("/room", datetime(2026, 11, 30, tzinfo=UTC), "en", bob + alice)
    assert [(u.speaker, u.text) for u in parse_markdown(text)] == [("Alice", "Good morning"), ("Bob", "Hello")]
    assert "[00:00:00] Alice: Good morning" in text and "[00:00:03] Bob: Hello" in text
