"""``client.recordings``: ``/v1/recordings`` (contract, "Recordings"): list, get, delete, bulk delete, access
links, and :meth:`Recordings.download`, which streams a recording's file through its access link."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import httpx

from herewith_client._exceptions import APIConnectionError, error_for
from herewith_client.resources._common import segment
from herewith_client.types import AccessLink, Recording

if TYPE_CHECKING:
    from herewith_client._client import AsyncHerewith, Herewith
    from herewith_client.pagination import AsyncPaginator, SyncPage

SortBy = Literal["roomName:asc", "roomName:desc", "startDate:asc", "startDate:desc", "duration:asc", "duration:desc",
                 "sizeInMegaBytes:asc", "sizeInMegaBytes:desc"]
Progress = Callable[[int, "int | None"], None]
"""``on_progress(bytes_done, bytes_total)``; ``bytes_total`` is None when the server did not say."""

CHUNK = 256 * 1024


def _list_params(room_name: str | None, sort_by: str | None, limit: int | None) -> dict[str, Any]:
    return {"roomName": room_name, "sortBy": sort_by, "limit": limit}


def _total(response: httpx.Response) -> int | None:
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _check(response: httpx.Response) -> None:
    if response.status_code >= 400:
        response.read()
        raise error_for(response)


class Recordings:
    """Cloud recordings of the client's organization."""

    def __init__(self, client: Herewith) -> None:
        self._client = client

    def list(self, *, room_name: str | None = None, sort_by: SortBy | None = None,
             limit: int | None = None) -> SyncPage[Recording]:
        """Recordings, newest first unless ``sort_by`` says otherwise (``GET /v1/recordings``); iterate the
        page for every recording. ``room_name``: only this room's (``"/team-abc"``)."""
        return self._client._list("/recordings", Recording, _list_params(room_name, sort_by, limit))

    def get(self, recording_id: str) -> Recording:
        """One recording; NotFoundError for an unknown or deleted id."""
        return self._client._request("GET", f"/recordings/{segment(recording_id)}", cast=Recording)

    def delete(self, recording_id: str) -> None:
        """Delete a recording and its file (a running one is stopped first); 204 whether or not it existed."""
        self._client._request("DELETE", f"/recordings/{segment(recording_id)}")

    def bulk_delete(self, recording_ids: Sequence[str]) -> None:
        """Delete up to 1000 recordings (``POST /v1/recordings/bulk-delete``); unknown ids are ignored."""
        self._client._request("POST", "/recordings/bulk-delete", json={"recordingIds": list(recording_ids)})

    def access_link(self, recording_id: str, *, valid_for_seconds: int | None = None) -> AccessLink:
        """A link that downloads the file until ``expires`` (``valid_for_seconds`` 1..43200, server default
        3600). ConflictError (409) while the recording is not ready."""
        return self._client._request("GET", f"/recordings/{segment(recording_id)}/access-link", cast=AccessLink,
                                     params={"validForSeconds": valid_for_seconds})

    def download(self, recording_id: str, destination: str | os.PathLike[str] | IO[bytes], *,
                 on_progress: Progress | None = None) -> int:
        """Write the recording's file to ``destination`` (a path, or a binary file open for writing) and
        return its size in bytes. Gets an access link, then streams the file from it (no API key is sent to
        the link, which may be the customer's S3 bucket). ``on_progress(done, total)`` is called after every
        chunk (256 KiB). A partial file is removed when the download fails."""
        link = self.access_link(recording_id)
        if isinstance(destination, (str, os.PathLike)):
            path = Path(destination)
            try:
                with path.open("wb") as out:
                    return self._stream(link.accessLink, out, on_progress)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
        return self._stream(link.accessLink, destination, on_progress)

    def _stream(self, url: str, out: IO[bytes], on_progress: Progress | None) -> int:
        done = 0
        try:
            with self._client._http.stream("GET", url, timeout=self._client.timeout) as response:
                _check(response)
                total = _total(response)
                for chunk in response.iter_bytes(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if on_progress:
                        on_progress(done, total)
        except httpx.TransportError as exc:
            raise APIConnectionError(f"GET {url.split('?')[0]}: {type(exc).__name__}: {exc}") from exc
        return done


class AsyncRecordings:
    """Cloud recordings; as :class:`Recordings`, awaited."""

    def __init__(self, client: AsyncHerewith) -> None:
        self._client = client

    def list(self, *, room_name: str | None = None, sort_by: SortBy | None = None,
             limit: int | None = None) -> AsyncPaginator[Recording]:
        """See :meth:`Recordings.list`."""
        return self._client._list("/recordings", Recording, _list_params(room_name, sort_by, limit))

    async def get(self, recording_id: str) -> Recording:
        """See :meth:`Recordings.get`."""
        return await self._client._request("GET", f"/recordings/{segment(recording_id)}", cast=Recording)

    async def delete(self, recording_id: str) -> None:
        """See :meth:`Recordings.delete`."""
        await self._client._request("DELETE", f"/recordings/{segment(recording_id)}")

    async def bulk_delete(self, recording_ids: Sequence[str]) -> None:
        """See :meth:`Recordings.bulk_delete`."""
        await self._client._request("POST", "/recordings/bulk-delete", json={"recordingIds": list(recording_ids)})

    async def access_link(self, recording_id: str, *, valid_for_seconds: int | None = None) -> AccessLink:
        """See :meth:`Recordings.access_link`."""
        return await self._client._request("GET", f"/recordings/{segment(recording_id)}/access-link",
                                           cast=AccessLink, params={"validForSeconds": valid_for_seconds})

    async def download(self, recording_id: str, destination: str | os.PathLike[str] | IO[bytes], *,
                       on_progress: Progress | None = None) -> int:
        """See :meth:`Recordings.download`; file writes run in a worker thread, off the event loop."""
        link = await self.access_link(recording_id)
        if isinstance(destination, (str, os.PathLike)):
            path = Path(destination)
            out = await asyncio.to_thread(path.open, "wb")
            try:
                return await self._stream(link.accessLink, out, on_progress)
            except BaseException:
                await asyncio.to_thread(out.close)
                await asyncio.to_thread(path.unlink, True)
                raise
            finally:
                if not out.closed:
                    await asyncio.to_thread(out.close)
        return await self._stream(link.accessLink, destination, on_progress)

    async def _stream(self, url: str, out: IO[bytes], on_progress: Progress | None) -> int:
        done = 0
        try:
            async with self._client._http.stream("GET", url, timeout=self._client.timeout) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_for(response)
                total = _total(response)
                async for chunk in response.aiter_bytes(CHUNK):
                    await asyncio.to_thread(out.write, chunk)
                    done += len(chunk)
                    if on_progress:
                        on_progress(done, total)
        except httpx.TransportError as exc:
            raise APIConnectionError(f"GET {url.split('?')[0]}: {type(exc).__name__}: {exc}") from exc
        return done
