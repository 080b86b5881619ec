"""Herewith: a self-hosted video meeting room server with a Whereby-compatible REST API (v1).

Start it with ``herewith serve``; create meetings with ``POST /v1/meetings``.
"""

__version__ = "0.1.0"
