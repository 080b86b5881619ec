"""Choose the Janus instance for a new group room, by load.

With several Janus instances (``HEREWITH_JANUS_URL`` holding several URLs) the control plane places each
group room on one of them. :class:`Placement` is a pure, synchronous bookkeeping class: it knows the
instances, which room lives where and how many participants each room has; it does no I/O. The control
plane updates it as rooms are created/destroyed and participants join/leave, and marks instances down
when their supervisor or health check says so (rooms on a down instance are to be recreated elsewhere).

Load of an instance = its participants + ``room_weight`` x its rooms (an empty room still costs a little).
The least-loaded instance that is up and has room for the expected participants wins; ties go to the
instance listed first.

Usage::

    placement = Placement(["http://janus-a:8088/janus", "http://janus-b:8088/janus"], max_participants=400)
    url = placement.place(room_id=1234, expected_participants=20)
    placement.participant_joined(1234)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["InstanceLoad", "NoJanusAvailable", "Placement"]


class NoJanusAvailable(RuntimeError):
    """No Janus instance is up with capacity left for the room."""


@dataclass(frozen=True)
class InstanceLoad:
    """Load of one Janus instance: ``url``, ``rooms``, ``participants``, ``up``."""

    url: str
    rooms: int
    participants: int
    up: bool


class Placement:
    """Rooms per Janus instance, and the choice of an instance for a new room.

    ``urls``: the instances, in order of preference for ties. ``max_participants``: capacity of one
    instance (None = unbounded). ``room_weight``: participants an empty room counts as.
    """

    def __init__(self, urls: Iterable[str], *, max_participants: int | None = None, room_weight: float = 1.0) -> None:
        self._urls: list[str] = list(dict.fromkeys(urls))
        if not self._urls:
            raise ValueError("Placement needs at least one Janus URL")
        self.max_participants = max_participants
        self.room_weight = room_weight
        self._down: set[str] = set()
        self._room_url: dict[int, str] = {}
        self._room_participants: dict[int, int] = {}
        self._room_reserved: dict[int, int] = {}

    # -- queries ---------------------------------------------------------------------------------
    @property
    def urls(self) -> list[str]:
        return list(self._urls)

    def url_of(self, room_id: int) -> str | None:
        """The instance holding ``room_id``, or None."""
        return self._room_url.get(room_id)

    def rooms_on(self, url: str) -> list[int]:
        """Rooms placed on ``url`` (e.g. to recreate them after that Janus restarted)."""
        return [r for r, u in self._room_url.items() if u == url]

    def load(self, url: str) -> InstanceLoad:
        rooms = self.rooms_on(url)
        participants = sum(self._room_participants[r] for r in rooms)
        return InstanceLoad(url, len(rooms), participants, url not in self._down)

    def loads(self) -> list[InstanceLoad]:
        return [self.load(u) for u in self._urls]

    def _committed(self, url: str) -> int:
        """Participants on ``url``, counting a room's reservation until more than that have joined."""
        return sum(max(self._room_participants[r], self._room_reserved[r]) for r in self.rooms_on(url))

    # -- decisions -------------------------------------------------------------------------------
    def choose(self, expected_participants: int = 0, *, exclude: Iterable[str] = ()) -> str:
        """The least-loaded instance that is up, not excluded, and can take ``expected_participants`` more.

        Raises :class:`NoJanusAvailable` when there is none.
        """
        skip = set(exclude) | self._down
        best: tuple[float, int, str] | None = None
        for order, url in enumerate(self._urls):
            if url in skip:
                continue
            committed = self._committed(url)
            if self.max_participants is not None and committed + expected_participants > self.max_participants:
                continue
            score = committed + self.room_weight * len(self.rooms_on(url))
            if best is None or (score, order) < best[:2]:
                best = (score, order, url)
        if best is None:
            raise NoJanusAvailable(f"no Janus instance can take {expected_participants} more participants")
        return best[2]

    def place(self, room_id: int, expected_participants: int = 0) -> str:
        """Choose an instance for a new room and record it there; returns its URL (same URL if already placed).

        ``expected_participants`` is reserved for the room until more than that have joined.
        """
        if room_id in self._room_url:
            return self._room_url[room_id]
        url = self.choose(expected_participants)
        self.assign(room_id, url, expected_participants)
        return url

    def assign(self, room_id: int, url: str, expected_participants: int = 0, participants: int = 0) -> None:
        """Record that ``room_id`` lives on ``url`` (e.g. rebuilt from the database at start)."""
        if url not in self._urls:
            raise ValueError(f"unknown Janus instance {url!r}")
        self._room_url[room_id] = url
        self._room_participants[room_id] = participants
        self._room_reserved[room_id] = expected_participants

    def remove(self, room_id: int) -> None:
        """Forget a destroyed room."""
        self._room_url.pop(room_id, None)
        self._room_participants.pop(room_id, None)
        self._room_reserved.pop(room_id, None)

    def participant_joined(self, room_id: int, n: int = 1) -> None:
        self._room_participants[room_id] += n

    def participant_left(self, room_id: int, n: int = 1) -> None:
        self._room_participants[room_id] = max(0, self._room_participants[room_id] - n)

    def mark_down(self, url: str) -> list[int]:
        """Take ``url`` out of placement; returns the rooms that were on it (to move or recreate)."""
        self._down.add(url)
        return self.rooms_on(url)

    def mark_up(self, url: str) -> None:
        self._down.discard(url)
