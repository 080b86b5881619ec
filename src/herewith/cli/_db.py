"""What every ``herewith`` command that touches the database shares: :func:`run_in_db`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from herewith.config import Settings
from herewith.db.engine import create_engine, create_sessionmaker
from herewith.db.migrate import upgrade
from herewith.errors import HerewithError

T = TypeVar("T")


def run_in_db(fn: Callable[[AsyncSession], Awaitable[T]], settings: Settings | None = None) -> T:
    """Migrate, open a session, run ``fn`` in it and commit. CLI errors print and exit 1."""
    settings = settings or Settings()

    async def main() -> T:
        engine = create_engine(settings)
        try:
            await upgrade(engine)
            async with create_sessionmaker(engine)() as session:
                result = await fn(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except HerewithError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
