"""What a group-room participant receives: the simulcast layer a tile needs, and who the loudest speakers are.

Pure rules, no Janus and no I/O; :class:`~herewith.media.group_rooms.GroupRoom` and
:class:`~herewith.media.sfu_proxy.SfuPeer` apply them.

* :func:`simulcast_layer` -- a tile's height in device pixels -> Janus ``substream`` (0 low, 1 medium,
  2 high) of a camera published in three layers (the room page's ``sendEncodings``: 1/4, 1/2 and full
  resolution), capped by what the subscriber's connection sustains.
* :class:`Speakers` -- Janus VideoRoom ``talking`` / ``stopped-talking`` events (the RTP audio-level header
  extension averaged by Janus) -> the active speaker and the loudest few, whose audio pages that report a
  view receive (LiveKit's "adaptive stream" and the first vendor's grid do the same: audio from the few who
  speak, not from everyone).

Usage::

    simulcast_layer(180)            # -> 0: a 320x180 tile needs the 1/4 layer of a 640x360 camera
    s = Speakers(limit=3)
    s.talking("ann", True, level=30) -> True (the active speaker or the loudest set changed)
    s.active, s.loudest()           # "ann", ["ann"]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LAYER_HEIGHTS", "Speakers", "simulcast_layer"]

# Upper bound (device pixels of tile height) served by each layer below the top one. A camera of 720 lines
# sends 180 (1/4), 360 (1/2) and 720: a tile up to ~1.2x a layer's height gets that layer (slight upscaling
# looks better than spending twice the bits).
LAYER_HEIGHTS = (220, 440)


def simulcast_layer(tile_height: int, cap: int = 2) -> int:
    """Janus ``substream`` for a tile ``tile_height`` device pixels high: 0 up to 220, 1 up to 440, else 2;
    never above ``cap`` (0..2, lowered while the subscriber's connection reports losses)."""
    layer = 2
    for i, bound in enumerate(LAYER_HEIGHTS):
        if tile_height <= bound:
            layer = i
            break
    return max(0, min(layer, cap))


@dataclass
class _Talk:
    talking: bool
    level: float  # Janus's average dBov magnitude: 0 loudest .. 127 silence
    since: float  # monotonic time of the last change


class Speakers:
    """Who talks in one room, from Janus's talking events.

    ``active``: the participant talking loudest now, or (sticky) the last one who talked; None before anyone
    talked. :meth:`loudest` gives up to ``limit`` participants: those talking now (loudest first), then those
    who talked most recently -- so the audio of a conversation keeps flowing between the turns.
    """

    def __init__(self, limit: int = 3, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._talk: dict[str, _Talk] = {}
        self.active: str | None = None

    def talking(self, participant_id: str, talking: bool, level: float | None = None) -> bool:
        """Record a ``talking`` (True) or ``stopped-talking`` (False) event; True when :attr:`active` or the set
        of :meth:`loudest` changed (tell the room, resubscribe audio); a new order alone is not worth a message
        to everyone."""
        before = (self.active, set(self.loudest()))
        prev = self._talk.get(participant_id)
        lvl = float(level) if level is not None else (prev.level if prev else 127.0)
        self._talk[participant_id] = _Talk(talking, lvl, self.clock())
        self._update_active()
        return (self.active, set(self.loudest())) != before  # the order alone changes nothing anyone receives

    def gone(self, participant_id: str) -> bool:
        """The participant left or stopped publishing; True when anything visible changed."""
        before = (self.active, set(self.loudest()))
        self._talk.pop(participant_id, None)
        if self.active == participant_id:
            self.active = None
        self._update_active()
        return (self.active, set(self.loudest())) != before

    def loudest(self) -> list[str]:
        """Up to ``limit`` participant ids: talking now (loudest first), then the most recent talkers."""
        now = [(t.level, -t.since, pid) for pid, t in self._talk.items() if t.talking]
        recent = [(-t.since, pid) for pid, t in self._talk.items() if not t.talking]
        ordered = [pid for *_, pid in sorted(now)] + [pid for _, pid in sorted(recent)]
        return ordered[: self.limit]

    def _update_active(self) -> None:
        talking = sorted((t.level, -t.since, pid) for pid, t in self._talk.items() if t.talking)
        if talking:
            self.active = talking[0][2]
        elif self.active not in self._talk:
            recent = sorted((-t.since, pid) for pid, t in self._talk.items())
            self.active = recent[0][1] if recent else None
