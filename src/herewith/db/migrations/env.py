"""Alembic environment: runs on the connection handed over by herewith.db.migrate."""

from alembic import context

from herewith.db.base import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `herewith db upgrade` (herewith.db.migrate)")
context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
