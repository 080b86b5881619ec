"""The room page: ``GET /{roomName}`` (HTML), its static files under ``/room-static/`` (plain ES modules, CSS)."""
