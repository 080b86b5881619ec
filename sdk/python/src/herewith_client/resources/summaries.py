"""``client.summaries``: ``/v1/summaries`` (contract, "Recordings, transcriptions, summaries"): summarize a
ready transcription with a template, list, get, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from herewith_client.resources._common import body, segment
from herewith_client.types import Summary, SummaryCreated

if TYPE_CHECKING:
    from herewith_client._client import AsyncHerewith, Herewith
    from herewith_client.pagination import AsyncPaginator, SyncPage

Template = Literal["SOAP", "Extended SOAP", "General Narrative", "General Bulleted", "Educational Lecture",
                   "Educational Tutoring"]
SortBy = Literal["roomName:asc", "roomName:desc", "startDate:asc", "startDate:desc", "createdAt:asc", "createdAt:desc"]


class Summaries:
    """Summaries of the client's organization."""

    def __init__(self, client: Herewith) -> None:
        self._client = client

    def create(self, *, transcription_id: str, template: Template | None = None) -> SummaryCreated:
        """Summarize a ready transcription (201 at once; ``in_progress`` until ``completed`` or ``failed``);
        ``template`` defaults to General Bulleted on the server. NotFoundError for an unknown transcription,
        ConflictError while it is not ready, InternalServerError (503) when the server has no summary backend."""
        return self._client._request("POST", "/summaries", cast=SummaryCreated,
                                     json=body(transcriptionId=transcription_id, template=template))

    def list(self, *, sort_by: SortBy | None = None, limit: int | None = None) -> SyncPage[Summary]:
        """Summaries; iterate the page for all of them."""
        return self._client._list("/summaries", Summary, {"sortBy": sort_by, "limit": limit})

    def get(self, summary_id: str) -> Summary:
        return self._client._request("GET", f"/summaries/{segment(summary_id)}", cast=Summary)

    def delete(self, summary_id: str) -> None:
        """Delete a summary; 204 whether or not it existed."""
        self._client._request("DELETE", f"/summaries/{segment(summary_id)}")


class AsyncSummaries:
    """Summaries; as :class:`Summaries`, awaited."""

    def __init__(self, client: AsyncHerewith) -> None:
        self._client = client

    async def create(self, *, transcription_id: str, template: Template | None = None) -> SummaryCreated:
        """See :meth:`Summaries.create`."""
        return await self._client._request("POST", "/summaries", cast=SummaryCreated,
                                           json=body(transcriptionId=transcription_id, template=template))

    def list(self, *, sort_by: SortBy | None = None, limit: int | None = None) -> AsyncPaginator[Summary]:
        """See :meth:`Summaries.list`."""
        return self._client._list("/summaries", Summary, {"sortBy": sort_by, "limit": limit})

    async def get(self, summary_id: str) -> Summary:
        return await self._client._request("GET", f"/summaries/{segment(summary_id)}", cast=Summary)

    async def delete(self, summary_id: str) -> None:
        await self._client._request("DELETE", f"/summaries/{segment(summary_id)}")
