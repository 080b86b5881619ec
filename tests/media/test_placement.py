"""herewith.media.placement: choosing a Janus instance by load (pure, no Janus needed)."""

from __future__ import annotations

import pytest

from herewith.media.placement import InstanceLoad, NoJanusAvailable, Placement

A, B, C = "http://a/janus", "http://b/janus", "http://c/janus"


def test_picks_the_least_loaded_instance() -> None:
    p = Placement([A, B, C])
    p.assign(1, A, participants=10)
    p.assign(2, B, participants=3)
    p.assign(3, C, participants=7)
    assert p.choose() == B
    assert p.place(4, expected_participants=20) == B
    assert p.choose() == C  # B now has 20 reserved
    assert p.load(B) == InstanceLoad(B, rooms=2, participants=3, up=True)


def test_ties_go_to_the_first_listed_and_rooms_count() -> None:
    p = Placement([A, B])
    assert [p.place(r) for r in (1, 2, 3, 4)] == [A, B, A, B]  # empty rooms weigh room_weight each


def test_participants_move_the_balance() -> None:
    p = Placement([A, B])
    p.place(1)
    p.place(2)
    p.participant_joined(1, 5)
    assert p.choose() == B
    p.participant_left(1, 5)
    p.participant_joined(2, 2)
    assert p.choose() == A


def test_place_is_idempotent_and_remove_frees() -> None:
    p = Placement([A, B])
    assert p.place(7, 50) == A and p.place(7, 50) == A
    assert p.choose() == B
    p.remove(7)
    assert p.url_of(7) is None and p.choose() == A


def test_down_instances_are_skipped_and_report_their_rooms() -> None:
    p = Placement([A, B])
    p.place(1)
    p.place(2)
    assert p.mark_down(A) == [1]
    assert p.choose() == B and p.load(A).up is False
    p.mark_up(A)
    assert p.choose() == A


def test_capacity_is_respected() -> None:
    p = Placement([A, B], max_participants=100)
    p.assign(1, A, participants=90)
    p.assign(2, B, participants=60)
    assert p.choose(expected_participants=30) == B
    with pytest.raises(NoJanusAvailable):
        p.choose(expected_participants=50)
    with pytest.raises(NoJanusAvailable):
        Placement([A], max_participants=10).choose(exclude=[A])


def test_needs_urls_and_known_instances() -> None:
    with pytest.raises(ValueError):
        Placement([])
    with pytest.raises(ValueError):
        Placement([A]).assign(1, B)
