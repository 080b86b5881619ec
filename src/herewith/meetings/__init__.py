"""Meetings: the four ``/v1/meetings`` calls (CONTRACT.md, "Meetings")."""
