"""``client.transcriptions``: ``/v1/transcriptions`` (contract, "Recordings, transcriptions, summaries"):
transcribe a ready recording, list, get, delete, bulk delete, access links, and :meth:`Transcriptions.text`,
the Markdown transcript itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import httpx

from herewith_client._exceptions import APIConnectionError, error_for
from herewith_client.resources._common import segment
from herewith_client.types import AccessLink, Transcription, TranscriptionCreated

if TYPE_CHECKING:
    from herewith_client._client import AsyncHerewith, Herewith
    from herewith_client.pagination import AsyncPaginator, SyncPage

SortBy = Literal["roomName:asc", "roomName:desc", "startDate:asc", "startDate:desc", "durationInSeconds:asc",
                 "durationInSeconds:desc"]


def _list_params(room_name: str | None, sort_by: str | None, limit: int | None) -> dict[str, Any]:
    return {"roomName": room_name, "sortBy": sort_by, "limit": limit}


def _text(response: httpx.Response) -> str:
    if response.status_code >= 400:
        raise error_for(response)
    return response.text


class Transcriptions:
    """Transcriptions of the client's organization."""

    def __init__(self, client: Herewith) -> None:
        self._client = client

    def create(self, *, recording_id: str) -> TranscriptionCreated:
        """Transcribe a ready recording (201 at once; the transcription is ``in_progress`` until ``ready`` or
        ``failed``, with ``transcription.*`` webhooks). NotFoundError for an unknown recording, ConflictError
        while it is not ready, InternalServerError (503) when the server has no speech-to-text."""
        return self._client._request("POST", "/transcriptions", cast=TranscriptionCreated,
                                     json={"recordingId": recording_id})

    def list(self, *, room_name: str | None = None, sort_by: SortBy | None = None,
             limit: int | None = None) -> SyncPage[Transcription]:
        """Transcriptions, newest first unless ``sort_by`` says otherwise; iterate the page for all of them."""
        return self._client._list("/transcriptions", Transcription, _list_params(room_name, sort_by, limit))

    def get(self, transcription_id: str) -> Transcription:
        return self._client._request("GET", f"/transcriptions/{segment(transcription_id)}", cast=Transcription)

    def delete(self, transcription_id: str) -> None:
        """Delete a transcription and its transcript (a job in progress stops); 204 whether or not it existed."""
        self._client._request("DELETE", f"/transcriptions/{segment(transcription_id)}")

    def bulk_delete(self, transcription_ids: Sequence[str]) -> None:
        """Delete up to 1000 transcriptions; unknown ids are ignored."""
        self._client._request("POST", "/transcriptions/bulk-delete", json={"transcriptionIds": list(transcription_ids)})

    def access_link(self, transcription_id: str, *, valid_for_seconds: int | None = None) -> AccessLink:
        """A link to the Markdown transcript until ``expires``; ConflictError (409) while it is not ready."""
        return self._client._request("GET", f"/transcriptions/{segment(transcription_id)}/access-link",
                                     cast=AccessLink, params={"validForSeconds": valid_for_seconds})

    def text(self, transcription_id: str) -> str:
        """The transcript, Markdown with one ``[hh:mm:ss] Name: words`` line per utterance (through an access
        link; no API key is sent to it)."""
        link = self.access_link(transcription_id)
        try:
            return _text(self._client._http.get(link.accessLink, timeout=self._client.timeout))
        except httpx.TransportError as exc:
            raise APIConnectionError(f"GET transcript: {type(exc).__name__}: {exc}") from exc


class AsyncTranscriptions:
    """Transcriptions; as :class:`Transcriptions`, awaited."""

    def __init__(self, client: AsyncHerewith) -> None:
        self._client = client

    async def create(self, *, recording_id: str) -> TranscriptionCreated:
        """See :meth:`Transcriptions.create`."""
        return await self._client._request("POST", "/transcriptions", cast=TranscriptionCreated,
                                           json={"recordingId": recording_id})

    def list(self, *, room_name: str | None = None, sort_by: SortBy | None = None,
             limit: int | None = None) -> AsyncPaginator[Transcription]:
        """See :meth:`Transcriptions.list`."""
        return self._client._list("/transcriptions", Transcription, _list_params(room_name, sort_by, limit))

    async def get(self, transcription_id: str) -> Transcription:
        return await self._client._request("GET", f"/transcriptions/{segment(transcription_id)}", cast=Transcription)

    async def delete(self, transcription_id: str) -> None:
        await self._client._request("DELETE", f"/transcriptions/{segment(transcription_id)}")

    async def bulk_delete(self, transcription_ids: Sequence[str]) -> None:
        await self._client._request("POST", "/transcriptions/bulk-delete",
                                    json={"transcriptionIds": list(transcription_ids)})

    async def access_link(self, transcription_id: str, *, valid_for_seconds: int | None = None) -> AccessLink:
        """See :meth:`Transcriptions.access_link`."""
        return await self._client._request("GET", f"/transcriptions/{segment(transcription_id)}/access-link",
                                           cast=AccessLink, params={"validForSeconds": valid_for_seconds})

    async def text(self, transcription_id: str) -> str:
        """See :meth:`Transcriptions.text`."""
        link = await self.access_link(transcription_id)
        try:
            return _text(await self._client._http.get(link.accessLink, timeout=self._client.timeout))
        except httpx.TransportError as exc:
            raise APIConnectionError(f"GET transcript: {type(exc).__name__}: {exc}") from exc
