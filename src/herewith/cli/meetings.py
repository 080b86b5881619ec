"""``herewith meetings``: create, list, get and delete meetings through the REST API (with an organization's key).

Usage::

    export HEREWITH_API_KEY=hw_...                     # and HEREWITH_BASE_URL=https://meet.example.com
    herewith meetings create --end-date 2099-02-18T14:23:00Z --host-url
    herewith meetings list [--prefix /team-] [--page-size 100] [--json]
    herewith meetings get MEETING_ID
    herewith meetings delete MEETING_ID [MEETING_ID ...]
"""

from __future__ import annotations

from typing import Annotated

import typer

from herewith.cli._api import ApiKey, AsJson, BaseUrl, api_client, dump

meetings_app = typer.Typer(help="Meetings, through the REST API with an organization's key (HEREWITH_API_KEY).",
                           no_args_is_help=True)


def _line(m) -> str:  # noqa: ANN001
    """meetingId, roomName, endDate, roomUrl (and hostRoomUrl / viewerRoomUrl when present), tab-separated."""
    parts = [m.meetingId, m.roomName, m.endDate.strftime("%Y-%m-%dT%H:%M:%SZ"), m.roomUrl]
    return "\t".join(parts + [u for u in (m.hostRoomUrl, m.viewerRoomUrl) if u])


@meetings_app.command("create")
def create(
    api_key: ApiKey,
    end_date: Annotated[str, typer.Option("--end-date", help="ISO-8601, any offset; the room is deactivated an hour after.")],
    base_url: BaseUrl = None,
    room_mode: Annotated[str, typer.Option("--room-mode", help="normal (up to 4, peer-to-peer) | group (SFU).")] = "normal",
    prefix: Annotated[str | None, typer.Option("--prefix", help="roomNamePrefix: at most 39 of a-z 0-9 -.")] = None,
    pattern: Annotated[str, typer.Option("--pattern", help="roomNamePattern: uuid | human-short.")] = "uuid",
    locked: Annotated[bool, typer.Option("--locked", help="Visitors knock and wait for a host.")] = False,
    host_url: Annotated[bool, typer.Option("--host-url", help="Also return hostRoomUrl.")] = False,
    viewer_url: Annotated[bool, typer.Option("--viewer-url", help="Also return viewerRoomUrl.")] = False,
    as_json: AsJson = False,
) -> None:
    """Create a meeting; prints meetingId, roomName, endDate, roomUrl (and the asked-for URLs), tab-separated."""
    fields = [f for f, on in (("hostRoomUrl", host_url), ("viewerRoomUrl", viewer_url)) if on]
    with api_client(base_url, api_key) as client:
        meeting = client.meetings.create(end_date=end_date, room_mode=room_mode, room_name_prefix=prefix,  # type: ignore[arg-type]
                                         room_name_pattern=pattern, is_locked=locked or None,  # type: ignore[arg-type]
                                         fields=fields or None)  # type: ignore[arg-type]
    typer.echo(dump(meeting) if as_json else _line(meeting))


@meetings_app.command("list")
def list_(
    api_key: ApiKey,
    base_url: BaseUrl = None,
    prefix: Annotated[str | None, typer.Option("--prefix", help="Only rooms whose name starts with this (/team-).")] = None,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=100, help="Meetings per request.")] = 100,
    as_json: AsJson = False,
) -> None:
    """Every meeting of the organization, oldest first (all pages): one line each."""
    with api_client(base_url, api_key) as client:
        for meeting in client.meetings.list(limit=page_size, room_name_starts_with=prefix):
            typer.echo(dump(meeting) if as_json else _line(meeting))


@meetings_app.command("get")
def get(meeting_id: str, api_key: ApiKey, base_url: BaseUrl = None, as_json: AsJson = False) -> None:
    """One meeting, with its host and viewer URLs."""
    with api_client(base_url, api_key) as client:
        meeting = client.meetings.get(meeting_id, fields=["hostRoomUrl", "viewerRoomUrl"])
    typer.echo(dump(meeting) if as_json else _line(meeting))


@meetings_app.command("delete")
def delete(meeting_ids: Annotated[list[str], typer.Argument(help="One or more meetingIds.")], api_key: ApiKey,
           base_url: BaseUrl = None) -> None:
    """Delete meetings: everyone in their rooms is removed at once."""
    with api_client(base_url, api_key) as client:
        for meeting_id in meeting_ids:
            client.meetings.delete(meeting_id)
            typer.echo(f"deleted {meeting_id}")
