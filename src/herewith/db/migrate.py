"""Apply Alembic migrations programmatically (at start, and by ``herewith db upgrade``).

Each domain adds its own revision branching from ``0001_initial``; we upgrade to ``heads``.
On PostgreSQL an advisory lock serialises processes that start at the same time.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_LOCK_ID = 0x4E5E_1717


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_ID})
    try:
        command.upgrade(alembic_config(connection), "heads")
    finally:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_ID})


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the database to the newest schema (all heads). Safe to call from several processes."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
