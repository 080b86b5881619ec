"""``client.insights``: usage per room, room session and participant (contract, "Insights")."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from herewith_client.resources._common import iso
from herewith_client.types import ParticipantDetail, ParticipantInsight, RoomInsight, RoomSessionInsight

if TYPE_CHECKING:
    from herewith_client._client import AsyncHerewith, Herewith
    from herewith_client.pagination import AsyncPaginator, SyncPage


def _rooms_params(room_name: str | None, room_name_starts_with: str | None, room_name_contains: str | None,
                  created_from: datetime | str | None, created_to: datetime | str | None, sort_by: str | None,
                  limit: int | None) -> dict[str, Any]:
    return {"roomName[exact]": room_name, "roomName[startsWith]": room_name_starts_with,
            "roomName[contains]": room_name_contains, "createdAt[from]": iso(created_from),
            "createdAt[to]": iso(created_to), "sortBy": sort_by, "limit": limit}


class Insights:
    """Usage insights of the client's organization. List calls return pages that iterate every page."""

    def __init__(self, client: Herewith) -> None:
        self._client = client

    def rooms(self, *, room_name: str | None = None, room_name_starts_with: str | None = None,
              room_name_contains: str | None = None, created_from: datetime | str | None = None,
              created_to: datetime | str | None = None, sort_by: str | None = None,
              limit: int | None = None) -> SyncPage[RoomInsight]:
        """Usage per room (``GET /v1/insights/rooms``); ``room_name`` is an exact match; ``created_*`` bound
        the room's creation time; ``limit`` per page (server default 10)."""
        return self._client._list("/insights/rooms", RoomInsight, _rooms_params(
            room_name, room_name_starts_with, room_name_contains, created_from, created_to, sort_by, limit))

    def room_sessions(self, *, room_name: str, room_session_id: str | None = None, sort_by: str | None = None,
                      limit: int | None = None) -> SyncPage[RoomSessionInsight]:
        """The sessions of a room (``GET /v1/insights/room-sessions``); NotFoundError for an unknown room."""
        return self._client._list("/insights/room-sessions", RoomSessionInsight, {
            "roomName": room_name, "roomSessionId": room_session_id, "sortBy": sort_by, "limit": limit})

    def participants(self, *, room_session_id: str | None = None, external_id: str | None = None,
                     sort_by: str | None = None, limit: int | None = None) -> SyncPage[ParticipantInsight]:
        """Participants of a room session, or everyone with an ``externalId`` (one of the two is required;
        ``sort_by``: ``joinedAt:asc`` ...)."""
        return self._client._list("/insights/participants", ParticipantInsight, {
            "roomSessionId": room_session_id, "externalId": external_id, "sortBy": sort_by, "limit": limit})

    def participant(self, *, room_session_id: str, participant_id: str) -> list[ParticipantDetail]:
        """Each connection of one participant with its samples (``GET /v1/insights/participant``)."""
        return self._client._request("GET", "/insights/participant", cast=list[ParticipantDetail], params={
            "roomSessionId": room_session_id, "participantId": participant_id})


class AsyncInsights:
    """Usage insights; as :class:`Insights`, awaited."""

    def __init__(self, client: AsyncHerewith) -> None:
        self._client = client

    def rooms(self, *, room_name: str | None = None, room_name_starts_with: str | None = None,
              room_name_contains: str | None = None, created_from: datetime | str | None = None,
              created_to: datetime | str | None = None, sort_by: str | None = None,
              limit: int | None = None) -> AsyncPaginator[RoomInsight]:
        """See :meth:`Insights.rooms`."""
        return self._client._list("/insights/rooms", RoomInsight, _rooms_params(
            room_name, room_name_starts_with, room_name_contains, created_from, created_to, sort_by, limit))

    def room_sessions(self, *, room_name: str, room_session_id: str | None = None, sort_by: str | None = None,
                      limit: int | None = None) -> AsyncPaginator[RoomSessionInsight]:
        """See :meth:`Insights.room_sessions`."""
        return self._client._list("/insights/room-sessions", RoomSessionInsight, {
            "roomName": room_name, "roomSessionId": room_session_id, "sortBy": sort_by, "limit": limit})

    def participants(self, *, room_session_id: str | None = None, external_id: str | None = None,
                     sort_by: str | None = None, limit: int | None = None) -> AsyncPaginator[ParticipantInsight]:
        """See :meth:`Insights.participants`."""
        return self._client._list("/insights/participants", ParticipantInsight, {
            "roomSessionId": room_session_id, "externalId": external_id, "sortBy": sort_by, "limit": limit})

    async def participant(self, *, room_session_id: str, participant_id: str) -> list[ParticipantDetail]:
        """See :meth:`Insights.participant`."""
        return await self._client._request("GET", "/insights/participant", cast=list[ParticipantDetail], params={
            "roomSessionId": room_session_id, "participantId": participant_id})
