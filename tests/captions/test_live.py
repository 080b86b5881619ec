"""Live-caption rules without a model (herewith.captions.live): utterances found from voice probabilities,
LocalAgreement-2 (a word is committed once two consecutive decodes agree on it, never taken back), finals of
ended utterances, and which track gets a free decoder when several want one (finals first, then the speakers
heard most recently; a track that speaks on is never starved by one that stopped)."""

from __future__ import annotations

import numpy as np

from herewith.captions.live import SAMPLE_RATE, VAD_WINDOW, TrackCaptions, agreed_prefix, pick_next

WINDOWS_PER_SECOND = SAMPLE_RATE / VAD_WINDOW


def feed(track: TrackCaptions, seconds: float, voiced: bool, now: float) -> float:
    """Feed ``seconds`` of audio (noise when voiced, zeros otherwise) in 96 ms chunks; returns the new time."""
    n = int(seconds * WINDOWS_PER_SECOND)
    rng = np.random.default_rng(1)
    for start in range(0, n, 3):
        k = min(3, n - start)
        pcm = (rng.standard_normal(k * VAD_WINDOW) * (0.1 if voiced else 0.0)).astype(np.float32)
        now += k * VAD_WINDOW / SAMPLE_RATE
        track.feed(pcm, np.full(k, 0.9 if voiced else 0.05, np.float32), now)
    return now


def test_agreed_prefix_ignores_case_and_punctuation() -> None:
    assert agreed_prefix(["Good", "morning,", "every"], ["good", "morning", "everyone."]) == 2
    assert agreed_prefix([], ["a"]) == 0
    assert agreed_prefix(["one", "two"], ["one", "two", "three"]) == 2


def test_an_utterance_gets_partials_with_local_agreement_then_a_final() -> None:
    track = TrackCaptions("ann", cadence=1.0, min_new=0.5, end_silence=0.6)
    now = feed(track, 0.5, False, 0.0)
    assert track.next_decode(now) is None  # silence: nothing to decode
    now = feed(track, 1.2, True, now)
    assert track.speaking and track.utterance == 1
    first = track.next_decode(now)
    assert first is not None and not first.final and first.utterance_id == "ann.1"
    assert abs(len(first.pcm) / SAMPLE_RATE - 1.5) < 0.15  # the voiced audio and the 0.3 s before it
    assert track.next_decode(now + 5) is None  # one partial in flight at a time
    caption = track.result(first, ["Good", "morning", "every"])
    assert caption is not None and caption.text == "Good morning every" and not caption.final
    assert track.committed == []  # one decode proves nothing
    now = feed(track, 1.2, True, now)
    second = track.next_decode(now)
    assert second is not None
    caption = track.result(second, ["Good", "morning,", "everyone", "wel"])
    assert track.committed == ["Good", "morning,"]  # what two decodes agreed on
    assert caption is not None and caption.text == "Good morning, everyone wel"
    now = feed(track, 1.1, True, now)
    third = track.next_decode(now)
    assert third is not None
    caption = track.result(third, ["Could", "morning", "everyone,", "welcome"])  # a worse guess of word one
    assert caption is not None and caption.text.startswith("Good morning, everyone")  # committed stays
    assert track.committed == ["Good", "morning,", "everyone,"]  # the newest spelling of an agreed word
    now = feed(track, 0.7, False, now)  # 0.6 s of silence ends it
    assert not track.speaking and track.pending_final_since() is not None
    final = track.next_decode(now)
    assert final is not None and final.final and final.utterance_id == "ann.1"
    assert len(final.pcm) / SAMPLE_RATE < 3.5 + 0.3 + 0.2 + 0.1  # trailing silence cut to 0.2 s
    assert final.speech_end is not None and abs(now - final.speech_end - 0.67) < 0.1
    caption = track.result(final, ["Good", "morning,", "everyone.", "Welcome."])
    assert caption is not None and caption.final and caption.text == "Good morning, everyone. Welcome."


def test_a_partial_that_returns_after_the_utterance_ended_is_dropped_and_the_final_does_not_wait() -> None:
    track = TrackCaptions("bob")
    now = feed(track, 1.6, True, 0.0)
    partial = track.next_decode(now)
    assert partial is not None
    now = feed(track, 0.7, False, now)
    final = track.next_decode(now)  # a final does not wait for the partial in flight
    assert final is not None and final.final
    assert track.result(partial, ["late", "words"]) is None
    assert track.result(final, ["Hello."]).text == "Hello."  # type: ignore[union-attr]


def test_long_utterances_are_cut_and_finalized() -> None:
    track = TrackCaptions("cy", max_utterance=4.0)
    now = feed(track, 9.0, True, 0.0)
    finals = []
    while (d := track.next_decode(now)) is not None and d.final:
        finals.append(d)
        track.result(d, ["x"])
    assert len(finals) == 2 and all(len(d.pcm) <= 4.1 * SAMPLE_RATE for d in finals)
    assert track.speaking and track.utterance == 3  # the third part is still open


def test_finals_first_then_the_most_recent_speakers() -> None:
    quiet, talker, other = TrackCaptions("quiet"), TrackCaptions("talker"), TrackCaptions("other")
    now = 0.0
    for t in (quiet, talker, other):
        feed(t, 1.6, True, now)
    now = 1.6
    # quiet stops (its final is pending); talker goes on; other went silent for a moment earlier.
    feed(quiet, 0.7, False, now)
    feed(talker, 0.7, True, now)
    feed(other, 0.4, False, now)
    feed(other, 0.3, True, now + 0.4)
    now += 0.7
    first = pick_next([talker, other, quiet], now)
    assert first is not None and first.final and first.track_id == "quiet"
    second = pick_next([talker, other, quiet], now)
    assert second is not None and not second.final
    third = pick_next([talker, other, quiet], now)
    assert third is not None and {second.track_id, third.track_id} == {"talker", "other"}
    assert pick_next([talker, other, quiet], now) is None  # all in flight: nothing queues
    # with one decoder for many speakers, each still gets a turn: the one waiting longest among equals
    talker.result(second if second.track_id == "talker" else third, ["a"])
    other.result(third if third.track_id == "other" else second, ["b"])
    feed(talker, 1.0, True, now)
    feed(other, 1.0, True, now)
    now += 1.0
    turns = []
    for _ in range(4):
        d = pick_next([talker, other], now)
        assert d is not None
        turns.append(d.track_id)
        (talker if d.track_id == "talker" else other).result(d, ["w"])
        feed(talker, 1.1, True, now)
        feed(other, 1.1, True, now)
        now += 1.1
    assert set(turns) == {"talker", "other"}
