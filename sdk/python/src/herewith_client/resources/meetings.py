"""``client.meetings``: ``POST/GET /v1/meetings``, ``GET/DELETE /v1/meetings/{meetingId}`` (contract, "Meetings")."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from herewith_client.resources._common import body, iso, segment
from herewith_client.types import Meeting

if TYPE_CHECKING:
    from herewith_client._client import AsyncHerewith, Herewith
    from herewith_client.pagination import AsyncPaginator, SyncPage

MeetingField = Literal["hostRoomUrl", "viewerRoomUrl"]


def _create_body(end_date: datetime | str, is_locked: bool | None, room_mode: str | None,
                 room_name_prefix: str | None, room_name_pattern: str | None, template_type: str | None,
                 fields: Sequence[str] | None, recording: dict[str, Any] | None,
                 live_transcription: dict[str, Any] | None, streaming: dict[str, Any] | None,
                 extra_body: dict[str, Any] | None) -> dict[str, Any]:
    return {**body(endDate=iso(end_date), isLocked=is_locked, roomMode=room_mode, roomNamePrefix=room_name_prefix,
                   roomNamePattern=room_name_pattern, templateType=template_type,
                   fields=list(fields) if fields is not None else None, recording=recording,
                   liveTranscription=live_transcription, streaming=streaming), **(extra_body or {})}


def _list_params(limit: int | None, fields: Sequence[str] | None, room_name_starts_with: str | None) -> dict[str, Any]:
    return {"limit": limit, "fields": fields, "roomName[startsWith]": room_name_starts_with}


class Meetings:
    """Meetings of the client's organization."""

    def __init__(self, client: Herewith) -> None:
        self._client = client

    def create(self, *, end_date: datetime | str, is_locked: bool | None = None,
               room_mode: Literal["normal", "group"] | None = None, room_name_prefix: str | None = None,
               room_name_pattern: Literal["uuid", "human-short"] | None = None,
               template_type: Literal["viewerMode"] | None = None, fields: Sequence[MeetingField] | None = None,
               recording: dict[str, Any] | None = None, live_transcription: dict[str, Any] | None = None,
               streaming: dict[str, Any] | None = None, extra_body: dict[str, Any] | None = None) -> Meeting:
        """Create a meeting (``POST /v1/meetings``, 201) and return it.

        ``end_date``: an aware datetime or ISO-8601 string, not in the past (the room is deactivated one hour
        after it); ``room_mode``: ``normal`` (up to 4, peer-to-peer) or ``group`` (up to 200, SFU);
        ``room_name_prefix``: at most 39 of ``[a-z0-9-]``; ``fields``: ``hostRoomUrl`` and/or
        ``viewerRoomUrl`` to get those URLs back; ``recording``, ``live_transcription``, ``streaming``: the
        contract's objects as dicts (``{"type": "cloud", "destination": None, "startTrigger": "prompt"}``);
        ``extra_body``: more keys for the JSON body. Raises BadRequestError (400, ``data`` names the field),
        ConflictError (409: no free room name), RateLimitError (429 after the retries).
        """
        return self._client._request("POST", "/meetings", cast=Meeting, json=_create_body(
            end_date, is_locked, room_mode, room_name_prefix, room_name_pattern, template_type, fields, recording,
            live_transcription, streaming, extra_body))

    def get(self, meeting_id: str, *, fields: Sequence[MeetingField] | None = None) -> Meeting:
        """One meeting (``GET /v1/meetings/{meetingId}``). NotFoundError for an unknown id or another
        organization's."""
        return self._client._request("GET", f"/meetings/{segment(meeting_id)}", cast=Meeting,
                                     params={"fields": fields})

    def list(self, *, limit: int | None = None, fields: Sequence[MeetingField] | None = None,
             room_name_starts_with: str | None = None) -> SyncPage[Meeting]:
        """The organization's meetings, oldest first (``GET /v1/meetings``): the first page of ``limit``
        (1..100, server default 50); iterate the page to go through every meeting, page after page.
        ``room_name_starts_with``: e.g. ``"/team-"``."""
        return self._client._list("/meetings", Meeting, _list_params(limit, fields, room_name_starts_with))

    def delete(self, meeting_id: str) -> None:
        """Delete a meeting (``DELETE /v1/meetings/{meetingId}``, 204): everyone in its room is removed at once.
        Idempotent for a meeting of yours that is already deleted."""
        self._client._request("DELETE", f"/meetings/{segment(meeting_id)}")


class AsyncMeetings:
    """Meetings of the client's organization; as :class:`Meetings`, awaited."""

    def __init__(self, client: AsyncHerewith) -> None:
        self._client = client

    async def create(self, *, end_date: datetime | str, is_locked: bool | None = None,
                     room_mode: Literal["normal", "group"] | None = None, room_name_prefix: str | None = None,
                     room_name_pattern: Literal["uuid", "human-short"] | None = None,
                     template_type: Literal["viewerMode"] | None = None,
                     fields: Sequence[MeetingField] | None = None, recording: dict[str, Any] | None = None,
                     live_transcription: dict[str, Any] | None = None, streaming: dict[str, Any] | None = None,
                     extra_body: dict[str, Any] | None = None) -> Meeting:
        """See :meth:`Meetings.create`."""
        return await self._client._request("POST", "/meetings", cast=Meeting, json=_create_body(
            end_date, is_locked, room_mode, room_name_prefix, room_name_pattern, template_type, fields, recording,
            live_transcription, streaming, extra_body))

    async def get(self, meeting_id: str, *, fields: Sequence[MeetingField] | None = None) -> Meeting:
        """See :meth:`Meetings.get`."""
        return await self._client._request("GET", f"/meetings/{segment(meeting_id)}", cast=Meeting,
                                           params={"fields": fields})

    def list(self, *, limit: int | None = None, fields: Sequence[MeetingField] | None = None,
             room_name_starts_with: str | None = None) -> AsyncPaginator[Meeting]:
        """See :meth:`Meetings.list`: ``await`` for the first page, ``async for`` for every meeting."""
        return self._client._list("/meetings", Meeting, _list_params(limit, fields, room_name_starts_with))

    async def delete(self, meeting_id: str) -> None:
        """See :meth:`Meetings.delete`."""
        await self._client._request("DELETE", f"/meetings/{segment(meeting_id)}")
