"""The second vendor's room API (Metered), over Herewith's own rooms (CONTRACT.md, "Another vendor's room
options"; seed 004). Routes under ``/api/v1`` (``endpoints``), the options mapped onto meetings and the
vendor-neutral room policy (``service``), request and answer shapes (``schemas``). Enforcement lives where
the room is run (:mod:`herewith.rooms.policy`, :mod:`herewith.signaling.live_room`), not here."""
