"""Rules of the meetings calls (CONTRACT.md, "Meetings"). No HTTP here; services never commit."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pydantic_core
from aiodataloader import DataLoader
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from uuid6 import uuid7

from herewith.auth import repository as auth_repository
from herewith.auth.models import OrganizationRef, Principal
from herewith.auth.room_keys import issue_room_key
from herewith.db.sqlite_inline import InlineReadUnavailable, InlineReader
from herewith.errors import HerewithError, NotFound, Unauthorized, validation_error
from herewith.kit.pagination import decode_cursor, encode_cursor
from herewith.kit.time import format_utc
from herewith.meetings import repository
from herewith.meetings.models import Meeting
from herewith.meetings.schemas import CreateMeetingRequest, MeetingOut

# human-short: six characters from an alphabet without look-alikes (no 0/o, 1/l/i), ~887 million names.
HUMAN_SHORT_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
HUMAN_SHORT_LENGTH = 6
MAX_NAME_ATTEMPTS = 8


@dataclass(frozen=True)
class RoomUrls:
    """How rooms are addressed: ``public_url`` (no trailing slash) and the roomKey signing secret."""

    public_url: str
    signing_key: str


def generate_room_name(pattern: str, prefix: str | None) -> str:
    """``/prefix-<uuid>`` or ``/prefix-<6 chars>`` (no prefix: ``/<...>``)."""
    if pattern == "human-short":
        core = "".join(secrets.choice(HUMAN_SHORT_ALPHABET) for _ in range(HUMAN_SHORT_LENGTH))
    else:
        core = str(uuid.uuid4())
    return "/" + (f"{prefix}-{core}" if prefix else core)


class MeetingRecord(Protocol):
    """What :func:`to_out` reads of a meeting: the ORM ``Meeting``, a row of the meetings table, or
    :class:`NewMeeting`."""

    id: str
    room_name: str
    template_type: str | None
    start_date: datetime
    end_date: datetime


@dataclass(frozen=True, slots=True)
class NewMeeting:
    """The meeting :func:`create_meeting` stored (the columns the response needs)."""

    id: str
    room_name: str
    template_type: str | None
    start_date: datetime
    end_date: datetime


class RoomNameTaken(Exception):
    """The meeting's room name (or id) is taken already."""


class _KeyRefused(Exception):
    """A row of the batch was not inserted because its API key is revoked."""


class MeetingStore:
    """Writes new meetings and reads single meetings for the hot calls, coalescing concurrent requests.

    Both act for a :class:`~herewith.auth.models.Principal` and check its API key in the statement that
    does the work: a principal from the authenticator's identity cache (``verified=False``) is refused
    with :class:`~herewith.errors.Unauthorized` or reads as absent once its key is revoked, with no
    extra round trip (:meth:`~herewith.auth.service.ApiKeyAuthenticator.identify`).

    Meetings created in the same event-loop tick are inserted together (group commit: one statement or
    one executemany and one commit for all of them), and single-meeting reads of one tick are one
    ``IN (...)`` query; aiodataloader does the collecting, without caching. Each call still returns only
    after its own row is committed or read, so a 201 is never sent for a meeting that is not durable.
    On PostgreSQL the batch is one ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` that checks each row's
    key (:func:`~herewith.meetings.repository.insert_meetings_checked`). Elsewhere it is one executemany
    of ``INSERT ... SELECT ... WHERE <the key is unrevoked>``
    (:func:`~herewith.meetings.repository.insert_meetings_checked_rows`); a batch that fails on a
    constraint (a taken human-short room name) or that a revoked key left a row short is rolled back and
    retried row by row, so that only the rows at fault fail. On SQLite, with ``inline``
    (:class:`~herewith.db.sqlite_inline.InlineReader`), single-meeting reads are synchronous point reads
    instead of batches.
    """

    def __init__(self, engine: AsyncEngine, max_batch_size: int = 200, inline: InlineReader | None = None) -> None:
        self._engine = engine
        self._inline = inline
        self._inserts: DataLoader[tuple[dict[str, Any], Principal], Exception | None] = DataLoader(
            self._insert_batch, cache=False, max_batch_size=max_batch_size)
        self._reads: DataLoader[tuple[str, str], Any] = DataLoader(
            self._read_batch, cache=False, max_batch_size=max_batch_size)

    async def _insert_batch(self, items: list[tuple[dict[str, Any], Principal]]) -> list[Exception | None]:
        if self._engine.dialect.name == "postgresql":
            return await self._insert_batch_checked(items)

        async def commit(batch: list[tuple[dict[str, Any], Principal]]) -> None:
            async with self._engine.begin() as conn:
                if await repository.insert_meetings_checked_rows(conn, [(v, p.key_id) for v, p in batch]) < len(batch):
                    raise _KeyRefused  # rolls the batch back; its rows are retried one by one below

        try:
            await commit(items)
            return [None] * len(items)
        except _KeyRefused:
            if len(items) == 1:
                return [Unauthorized()]
        except IntegrityError:
            if len(items) == 1:
                return [RoomNameTaken()]
        outcomes: list[Exception | None] = []
        for item in items:
            try:
                await commit([item])
                outcomes.append(None)
            except _KeyRefused:
                outcomes.append(Unauthorized())
            except IntegrityError:
                outcomes.append(RoomNameTaken())
        return outcomes

    async def _insert_batch_checked(self, items: list[tuple[dict[str, Any], Principal]]) -> list[Exception | None]:
        async with self._engine.connect() as conn:  # the autocommit pool: the one statement is the transaction
            inserted = await repository.insert_meetings_checked(conn, [(v, p.key_id) for v, p in items])
            left_out = {p.key_id for v, p in items if v["id"] not in inserted}
            active = await auth_repository.active_keys(conn, left_out) if left_out else {}
        return [None if v["id"] in inserted
                else RoomNameTaken() if active.get(p.key_id) == v["organization_id"] else Unauthorized()
                for v, p in items]

    async def _read_batch(self, keys: list[tuple[str, str]]) -> list[Any]:
        async with self._engine.connect() as conn:
            rows = await repository.live_rows_for_keys(conn, keys)
        return [rows.get(key) for key in keys]

    async def insert(self, values: dict[str, Any], principal: Principal) -> None:
        """Insert one meeting row (every column but ``seq``) for ``principal`` and wait for its commit.
        Raises :class:`RoomNameTaken` when its ``room_name`` is taken, :class:`~herewith.errors.Unauthorized`
        when the principal's key is revoked."""
        outcome = await self._inserts.load((values, principal))
        if outcome is not None:
            raise outcome

    async def get_live(self, principal: Principal, meeting_id: str) -> MeetingRecord | None:
        """The live meeting with that id when it is the principal's organization's and the principal's key
        is unrevoked; None otherwise."""
        if self._inline is not None:
            try:
                return repository.live_row_for_key_inline(self._inline, principal.key_id, meeting_id)
            except InlineReadUnavailable:
                pass
        return await self._reads.load((principal.key_id, meeting_id))


async def create_meeting(
    store: MeetingStore, principal: Principal, request: CreateMeetingRequest, now: datetime
) -> NewMeeting:
    """Create a meeting and its room for ``principal``'s organization; returns once it is committed.

    ``endDate`` before ``now`` is a 400 naming ``endDate``. ``templateType: viewerMode`` makes the room
    locked and ``group``. A room-name collision (human-short) is retried with a new name; after
    ``MAX_NAME_ATTEMPTS`` collisions a 409. :class:`~herewith.errors.Unauthorized` when the principal's key
    is revoked (see :class:`MeetingStore`).
    """
    if request.endDate < now.replace(microsecond=(now.microsecond // 1000) * 1000):
        raise validation_error("endDate", "must not be in the past")
    is_locked = bool(request.isLocked)
    room_mode = request.roomMode
    if request.templateType == "viewerMode":
        is_locked, room_mode = True, "group"
    base = {
        "organization_id": principal.organization.id,
        "room_mode": room_mode,
        "is_locked": is_locked,
        "template_type": request.templateType,
        "start_date": now,
        "end_date": request.endDate,
        "recording": request.recording.model_dump() if request.recording else None,
        "live_transcription": request.liveTranscription.model_dump() if request.liveTranscription else None,
        "streaming": request.streaming.model_dump() if request.streaming else None,
        "deactivated_at": None,
        "deleted_at": None,
    }
    # The meeting id is time-ordered (UUIDv7, RFC 9562): new ids go to the end of the id index instead of
    # dirtying a random page of it per row (a batch of five inserts: 57 -> 43 us per row in SQLite). It is
    # not a secret (the API key guards it); room names are capabilities and stay random.
    meeting_id = str(uuid7())
    for _ in range(MAX_NAME_ATTEMPTS):
        # uuid names carry 122 random bits: only human-short names ever collide.
        values = {**base, "id": meeting_id,
                  "room_name": generate_room_name(request.roomNamePattern, request.roomNamePrefix)}
        try:
            await store.insert(values, principal)
        except RoomNameTaken:
            continue  # the room name was taken: draw another
        return NewMeeting(values["id"], values["room_name"], request.templateType, now, request.endDate)
    raise HerewithError("Could not allocate a unique room name", status=409)


async def get_meeting(store: MeetingStore, principal: Principal, meeting_id: str) -> MeetingRecord:
    """The principal's organization's live meeting; :class:`NotFound` for unknown, deleted or foreign ids,
    and for every id once the principal's key is revoked (see :class:`MeetingStore`)."""
    meeting = await store.get_live(principal, meeting_id)
    if meeting is None:
        raise NotFound()
    return meeting


async def list_meetings(
    session: AsyncSession, organization: OrganizationRef, cursor: str | None, limit: int, room_name_starts_with: str | None
) -> tuple[list[Meeting], str | None]:
    """One page of the organization's meetings, oldest first, and the cursor of the next page (None at the end)."""
    after = None
    if cursor:
        decoded = decode_cursor(cursor)
        if not isinstance(decoded, int):
            raise validation_error("cursor", "not a cursor returned by this API")
        after = decoded
    prefix = room_name_starts_with
    if prefix is not None and not prefix.startswith("/"):
        prefix = "/" + prefix
    rows = list(await repository.list_page(session, organization.id, after, limit + 1, prefix))
    next_cursor = encode_cursor(rows[limit - 1].seq) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def delete_meeting(session: AsyncSession, organization: OrganizationRef, meeting_id: str, now: datetime) -> Meeting | None:
    """Mark the meeting deleted (idempotent: unknown, foreign or already deleted ids are a no-op returning None)."""
    meeting = await repository.get_for_organization(session, organization.id, meeting_id)
    if meeting is None:
        return None
    meeting.deleted_at = now
    await session.flush()
    return meeting


def parse_fields(values: Iterable[str]) -> set[str]:
    """``fields`` from a query (``fields=a,b`` or repeated) as a set; a 400 naming ``fields`` for unknown names."""
    out: set[str] = set()
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            if name not in ("hostRoomUrl", "viewerRoomUrl"):
                raise validation_error("fields", "items must be hostRoomUrl or viewerRoomUrl")
            out.add(name)
    return out


def meeting_fields(meeting: MeetingRecord, urls: RoomUrls, fields: Iterable[str] = ()) -> dict[str, str]:
    """The contract's Meeting as a dict: ``meetingId``, ``roomName``, ``roomUrl``, ``startDate``, ``endDate``,
    and ``hostRoomUrl`` / ``viewerRoomUrl`` only when asked for in ``fields``. viewerMode rooms always carry
    both URLs (seed 003, templateType)."""
    room_url = urls.public_url.rstrip("/") + meeting.room_name
    out = {
        "meetingId": meeting.id,
        "roomName": meeting.room_name,
        "roomUrl": room_url,
        "startDate": format_utc(meeting.start_date),
        "endDate": format_utc(meeting.end_date),
    }
    viewer_mode = meeting.template_type == "viewerMode"
    if viewer_mode or "hostRoomUrl" in fields:
        out["hostRoomUrl"] = f"{room_url}?roomKey={issue_room_key(urls.signing_key, meeting.room_name, 'host', meeting.end_date)}"
    if viewer_mode or "viewerRoomUrl" in fields:
        out["viewerRoomUrl"] = f"{room_url}?roomKey={issue_room_key(urls.signing_key, meeting.room_name, 'viewer', meeting.end_date)}"
    return out


def meeting_json(meeting: MeetingRecord, urls: RoomUrls, fields: Iterable[str] = ()) -> bytes:
    """:func:`meeting_fields` serialized (UTF-8 JSON), for the single-meeting responses: the values are
    already the contract's strings, so building and validating a :class:`MeetingOut` first would only
    cost time (MeetingOut stays their OpenAPI response model)."""
    return pydantic_core.to_json(meeting_fields(meeting, urls, fields))


def to_out(meeting: MeetingRecord, urls: RoomUrls, fields: Iterable[str] = ()) -> MeetingOut:
    """The contract's Meeting as a :class:`MeetingOut` (see :func:`meeting_fields`)."""
    return MeetingOut(**meeting_fields(meeting, urls, fields))
