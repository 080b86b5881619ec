"""``herewith recordings``: list and download cloud recordings through the REST API (an organization's key).

Usage::

    herewith recordings list [--room /team-abc] [--json]
    herewith recordings download RECORDING_ID [-o FILE]       # with a progress bar
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from herewith.cli._api import ApiKey, AsJson, BaseUrl, api_client, dump

recordings_app = typer.Typer(help="Cloud recordings, through the REST API with an organization's key.",
                             no_args_is_help=True)


@recordings_app.command("list")
def list_(
    api_key: ApiKey,
    base_url: BaseUrl = None,
    room: Annotated[str | None, typer.Option("--room", help="Only this room's recordings (/team-abc).")] = None,
    sort_by: Annotated[str | None, typer.Option("--sort-by", help="e.g. startDate:asc (default startDate:desc).")] = None,
    as_json: AsJson = False,
) -> None:
    """Recordings, newest first: recordingId, roomName, startDate, state, size in MB, filename (tab-separated)."""
    with api_client(base_url, api_key) as client:
        for r in client.recordings.list(room_name=room, sort_by=sort_by, limit=100):  # type: ignore[arg-type]
            if as_json:
                typer.echo(dump(r))
            else:
                typer.echo("\t".join([r.recordingId, r.roomName, r.startDate.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                      r.state or "", f"{r.sizeInMegaBytes:.3f}", r.filename or ""]))


@recordings_app.command("download")
def download(
    recording_id: str,
    api_key: ApiKey,
    base_url: BaseUrl = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write (default: the recording's filename).")] = None,
) -> None:
    """Download a ready recording's file, with a progress bar; prints the path written."""
    with api_client(base_url, api_key) as client:
        recording = client.recordings.get(recording_id)
        target = output or Path(recording.filename or f"{recording_id}.{recording.fileFormat or 'mp4'}")
        expected = round(recording.sizeInMegaBytes * 1_000_000) or None
        with typer.progressbar(length=expected or 1, label=target.name, file=sys.stderr) as bar:
            last = 0

            def advance(done: int, total: int | None) -> None:
                nonlocal last
                if total and bar.length != total:
                    bar.length = total
                bar.update(done - last)
                last = done

            size = client.recordings.download(recording_id, target, on_progress=advance)
    typer.echo(f"{target}\t{size}")
