"""What the ``herewith`` commands that call the REST API share: the server and key options, an SDK client,
and API errors printed as ``error: <message>`` with exit status 1.

These commands go through the public API with an organization's key (like any integrator, and so limited and
audited the same way), on the Python SDK (``herewith_client``, installed from ``sdk/python``); the operator
commands (``orgs``, ``keys``, ``webhooks``) work on the database directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from herewith_client import Herewith

BaseUrl = Annotated[str | None, typer.Option(
    "--base-url", envvar="HEREWITH_BASE_URL",
    help="The server, e.g. https://meet.example.com (default: HEREWITH_PUBLIC_URL or http://HOST:PORT of this "
         "machine's settings).")]
ApiKey = Annotated[str, typer.Option("--api-key", envvar="HEREWITH_API_KEY", help="An organization's API key.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (one object per line for lists).")]


@contextmanager
def api_client(base_url: str | None, api_key: str) -> Iterator[Herewith]:
    """An SDK client for the command; an API or connection error ends it with ``error: ...`` and status 1."""
    try:
        from herewith_client import Herewith, HerewithError
    except ImportError:
        typer.echo("error: the Python SDK is not installed: pip install ./sdk/python", err=True)
        raise typer.Exit(1) from None
    if not base_url:
        from herewith.config import Settings

        base_url = Settings().public_url
    try:
        with Herewith(base_url=base_url, api_key=api_key) as client:
            yield client
    except HerewithError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def dump(model: Any) -> str:
    """A model as one line of JSON (API field names, dates as ISO-8601)."""
    return json.dumps(model.model_dump(mode="json", exclude_none=True), separators=(",", ":"))
