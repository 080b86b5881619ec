"""``herewith webhooks``: manage webhook endpoints from the command line (operators; any organization).

Usage::

    herewith webhooks create ORG_ID https://example.com/hooks --event room.client.joined --event room.session.ended
    herewith webhooks list [--org ORG_ID]
    herewith webhooks rotate-secret WEBHOOK_ID
    herewith webhooks delete WEBHOOK_ID
"""

from __future__ import annotations

from datetime import datetime, timezone

import typer
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from herewith.cli._db import run_in_db
from herewith.config import Settings
from herewith.errors import NotFound, validation_error
from herewith.webhooks import repository, service
from herewith.webhooks.models import WebhookEndpoint
from herewith.webhooks.schemas import CreateWebhookRequest
from herewith.webhooks.targets import TargetPolicy

webhooks_app = typer.Typer(help="Webhook endpoints (the signing secret is shown once, at creation and rotation).",
                           no_args_is_help=True)


def _run(fn):  # noqa: ANN001, ANN202
    return run_in_db(fn)


async def _owner(session: AsyncSession, webhook_id: str) -> str:
    org_id = await session.scalar(select(WebhookEndpoint.organization_id).where(WebhookEndpoint.id == webhook_id))
    if org_id is None:
        raise NotFound(f"No webhook {webhook_id}")
    return org_id


@webhooks_app.command("create")
def create(
    organization_id: str,
    url: str,
    event: list[str] = typer.Option(None, "--event", help="An event type to send (repeat); default: all."),
    description: str = typer.Option("", help="A label."),
) -> None:
    """Create an endpoint; prints its id and signing secret (tab-separated). The URL must pass the target
    policy of this server's settings (``HEREWITH_WEBHOOK_ALLOW_PRIVATE_TARGETS``, ``HEREWITH_PUBLIC_URL``)."""

    async def go(session: AsyncSession) -> str:
        from herewith.auth import repository as auth_repository

        if await auth_repository.get_organization(session, organization_id) is None:
            raise NotFound(f"No organization {organization_id}")
        try:
            request = CreateWebhookRequest(url=url, events=event or None, description=description)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise validation_error(str(err["loc"][0]), str(err["msg"]).removeprefix("Value error, ")) from None
        endpoint = await service.create_endpoint(session, organization_id, request, datetime.now(timezone.utc),
                                                 TargetPolicy.from_settings(Settings()))
        return f"{endpoint.id}\t{endpoint.secret}"

    typer.echo(_run(go))


@webhooks_app.command("list")
def list_(organization_id: str = typer.Option(None, "--org", help="Only this organization's endpoints.")) -> None:
    """List endpoints: id, organization, enabled|disabled, url, events (never the secret)."""

    async def go(session: AsyncSession) -> list[str]:
        return [
            f"{e.id}\t{e.organization_id}\t{'enabled' if e.enabled else 'disabled'}\t{e.url}\t{','.join(e.events)}"
            for e in await repository.list_endpoints(session, organization_id)
        ]

    for line in _run(go):
        typer.echo(line)


@webhooks_app.command("delete")
def delete(webhook_id: str) -> None:
    """Delete an endpoint with its queue and delivery log."""

    async def go(session: AsyncSession) -> str:
        await service.delete_endpoint(session, await _owner(session, webhook_id), webhook_id)
        return webhook_id

    typer.echo(f"deleted {_run(go)}")


@webhooks_app.command("rotate-secret")
def rotate_secret(webhook_id: str) -> None:
    """Replace the signing secret at once; prints the new one."""

    async def go(session: AsyncSession) -> str:
        return (await service.rotate_secret(session, await _owner(session, webhook_id), webhook_id)).secret

    typer.echo(_run(go))
