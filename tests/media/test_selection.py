"""The rules of what a big group room forwards (herewith.media.selection): simulcast layer per tile, speakers."""

from __future__ import annotations

from herewith.media.selection import Speakers, simulcast_layer


def test_layer_follows_the_tile_height_and_the_cap() -> None:
    assert [simulcast_layer(h) for h in (0, 120, 220, 221, 360, 440, 441, 720, 2160)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert simulcast_layer(720, cap=1) == 1
    assert simulcast_layer(720, cap=0) == 0
    assert simulcast_layer(100, cap=2) == 0


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def test_active_speaker_is_the_loudest_talking_then_sticky() -> None:
    s = Speakers(limit=3, clock=Clock())
    assert s.active is None and s.loudest() == []
    assert s.talking("ann", True, 40)
    assert s.active == "ann" and s.loudest() == ["ann"]
    assert s.talking("bob", True, 20)  # louder (a smaller dBov magnitude)
    assert s.active == "bob" and s.loudest() == ["bob", "ann"]
    assert s.talking("bob", False, 90)
    assert s.active == "ann"  # still talking
    assert not s.talking("ann", False, 90)  # nothing visible changed:
    assert s.active == "ann"  # nobody talks, the last one stays the active speaker
    assert s.loudest() == ["ann", "bob"]  # most recent first


def test_loudest_is_limited_and_leavers_drop_out() -> None:
    s = Speakers(limit=3, clock=Clock())
    for name in ("a", "b", "c", "d"):
        s.talking(name, True, 30)
        s.talking(name, False, 100)
    assert s.loudest() == ["d", "c", "b"]
    assert s.active == "d"
    s.talking("a", True, 50)
    assert s.loudest() == ["a", "d", "c"] and s.active == "a"
    assert s.gone("a")
    assert s.active == "d" and "a" not in s.loudest()
    assert not s.gone("nobody")


def test_a_new_order_of_the_same_speakers_is_no_change() -> None:
    s = Speakers(limit=3, clock=Clock())
    s.talking("a", True, 30)
    s.talking("b", True, 40)
    assert s.loudest() == ["a", "b"]
    assert not s.talking("b", False, 90)  # still the same two, "a" still active
    assert s.talking("b", True, 10)  # louder than "a": a new active speaker
    assert s.active == "b"
