"""Media for group rooms: the Janus SFU (control client, supervised local instance, room placement).

See ``docs/janus-notes.md`` for how Janus is locked down and why browsers signal through Herewith.
"""

from herewith.media.janus import (
    VIDEOROOM,
    JanusClient,
    JanusError,
    JanusHandle,
    JanusSession,
    JanusSessionLost,
    JanusUnavailable,
    VideoRoomAdmin,
)
from herewith.media.placement import InstanceLoad, NoJanusAvailable, Placement
from herewith.media.supervisor import JanusStartError, JanusSupervisor

__all__ = [
    "VIDEOROOM",
    "InstanceLoad",
    "JanusClient",
    "JanusError",
    "JanusHandle",
    "JanusSession",
    "JanusSessionLost",
    "JanusStartError",
    "JanusSupervisor",
    "JanusUnavailable",
    "NoJanusAvailable",
    "Placement",
    "VideoRoomAdmin",
]
