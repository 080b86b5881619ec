"""The ``herewith`` command: serve, db, orgs, keys, webhooks (operators: the database directly) and meetings,
recordings (integrators: the REST API with an organization's key, on the Python SDK).

Usage::

    herewith serve --host 127.0.0.1 --port 8080
    herewith orgs create "Acme" --plan grow
    herewith keys create ORG_ID
    HEREWITH_API_KEY=hw_... herewith meetings create --end-date 2099-02-18T14:23:00Z
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from herewith.auth import service as auth_service
from herewith.config import Settings
from herewith.errors import HerewithError
from herewith.cli._db import run_in_db
from herewith.cli.meetings import meetings_app
from herewith.cli.recordings import recordings_app
from herewith.cli.webhooks import webhooks_app

app = typer.Typer(help="Herewith: self-hosted video meeting rooms with a Whereby-compatible API.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
orgs_app = typer.Typer(help="Organizations.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(orgs_app, name="orgs")
app.add_typer(keys_app, name="keys")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(meetings_app, name="meetings")
app.add_typer(recordings_app, name="recordings")



@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to bind (default HEREWITH_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="TCP port (default HEREWITH_PORT or 8080)."),
) -> None:
    """Start the server: REST API under /v1, room pages, signaling. Creates a first API key on an empty database."""
    import uvicorn

    from herewith.app import create_app
    from herewith.kit.gc_tuning import configure_gc
    from herewith.kit.logs import uvicorn_log_config

    overrides: dict[str, Any] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    settings = Settings(**overrides)
    first_key = run_in_db(auth_service.ensure_default_organization, settings)
    if first_key:
        base = f"http://{settings.host}:{settings.port}"
        typer.echo(
            "\nCreated the default organization. Its API key (shown once, keep it secret):\n\n"
            f"    {first_key}\n\n"
            "Create a meeting:\n\n"
            f"    curl -s {base}/v1/meetings -H 'Authorization: Bearer {first_key}' \\\n"
            "      -H 'Content-Type: application/json' \\\n"
            "      -d '{\"endDate\": \"2099-02-18T14:23:00.000Z\", \"fields\": [\"hostRoomUrl\"]}'\n"
        )
    app_ = create_app(settings)
    configure_gc()
    log_config = uvicorn_log_config(settings.log_level, settings.log_format)  # JSON lines: HEREWITH_LOG_FORMAT=json
    uvicorn.run(app_, host=settings.host, port=settings.port, log_level=settings.log_level,
                proxy_headers=True, ws_max_size=max(64 * 1024, settings.signaling_max_answer_bytes), **({"log_config": log_config} if log_config else {}))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations."""

    async def noop(_: AsyncSession) -> None:
        return None

    run_in_db(noop)
    typer.echo("database is up to date")


@orgs_app.command("create")
def orgs_create(name: str, plan: str = typer.Option("grow", help="build (100 points/min) or grow (1000).")) -> None:
    """Create an organization and print its id."""

    async def go(session: AsyncSession) -> str:
        return (await auth_service.create_organization(session, name, plan)).id

    typer.echo(run_in_db(go))


@orgs_app.command("list")
def orgs_list() -> None:
    """List organizations: id, plan, custom limit, name."""

    async def go(session: AsyncSession) -> list[str]:
        return [
            f"{o.id}\t{o.plan}\t{o.rate_limit_points or '-'}\t{o.name}"
            for o in await auth_service.list_organizations(session)
        ]

    for line in run_in_db(go):
        typer.echo(line)


@orgs_app.command("set-limit")
def orgs_set_limit(
    organization_id: str,
    plan: str = typer.Option(None, "--plan", help="build (100 points/min) or grow (1000); clears a custom budget."),
    points: int = typer.Option(None, "--points", help="A custom budget in points per minute."),
) -> None:
    """Set an organization's rate limit: a plan or a custom number of points per minute (one of the two)."""
    from herewith.ratelimit import service as ratelimit_service

    async def go(session: AsyncSession) -> str:
        org = await ratelimit_service.set_limit(session, organization_id, plan=plan, points=points)
        return f"{org.id}\t{ratelimit_service.describe_limit(org)}"

    typer.echo(run_in_db(go))


@keys_app.command("create")
def keys_create(organization_id: str, name: str = typer.Option("", help="A label for the key.")) -> None:
    """Create an API key for an organization; the key is printed once and never stored."""

    async def go(session: AsyncSession) -> str:
        return (await auth_service.create_api_key(session, organization_id, name))[1]

    typer.echo(run_in_db(go))


@keys_app.command("list")
def keys_list(organization_id: str = typer.Option(None, "--org", help="Only this organization's keys.")) -> None:
    """List keys: id, organization, prefix, state, name (never the key)."""

    async def go(session: AsyncSession) -> list[str]:
        return [
            f"{k.id}\t{k.organization_id}\t{k.prefix}…\t{'revoked' if k.revoked_at else 'active'}\t{k.name}"
            for k in await auth_service.list_api_keys(session, organization_id)
        ]

    for line in run_in_db(go):
        typer.echo(line)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key at once."""

    async def go(session: AsyncSession) -> str:
        return (await auth_service.revoke_api_key(session, key_id)).id

    typer.echo(f"revoked {run_in_db(go)}")
