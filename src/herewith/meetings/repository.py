"""All SQL of the meetings domain."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Row, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from herewith.db.sqlite_inline import InlineQuery, InlineReader
from herewith.meetings.models import Meeting

_meetings = Meeting.__table__
# The statements of the hot calls (POST and GET /v1/meetings/{id}) are built once, on table columns:
# building a statement costs ten times what SQLite takes to run it, and the ORM adds as much again.
_INSERT = insert(_meetings)
_LIVE_BY_IDS = select(_meetings).where(
    _meetings.c.id.in_(bindparam("ids", expanding=True)), _meetings.c.deleted_at.is_(None)
)


class _DriverInsert:
    """``_INSERT`` compiled once for a dialect: the driver's SQL text and each column's bind processor.

    Executing a Core insert converts every parameter through SQLAlchemy's execution context, which
    measured about twice what SQLite itself takes per row for batches of five; with the statement compiled
    here, a batch is one ``exec_driver_sql`` executemany of ready tuples (same types, same conversions).
    """

    def __init__(self, dialect: Any) -> None:
        keys = [c.key for c in _meetings.columns if c.key != "seq"]
        compiled = _INSERT.compile(dialect=dialect, column_keys=keys)
        self.sql = str(compiled)
        self.keys = tuple(compiled.positiontup or ())
        assert set(self.keys) == set(keys), "the driver's paramstyle must be positional"
        self.processors = tuple(_meetings.c[k].type.bind_processor(dialect) for k in self.keys)

    def params(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        pairs = tuple(zip(self.keys, self.processors))
        return [tuple(row[k] if p is None else p(row[k]) for k, p in pairs) for row in rows]


_driver_inserts: dict[str, _DriverInsert] = {}


async def insert_meetings(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert meeting rows (every column but ``seq``; one executemany). Raises IntegrityError when a
    ``room_name`` or ``id`` is taken."""
    prepared = _driver_inserts.get(conn.dialect.name)
    if prepared is None:
        prepared = _driver_inserts[conn.dialect.name] = _DriverInsert(conn.dialect)
    await conn.exec_driver_sql(prepared.sql, prepared.params(rows))


class InlineMeetingRow(NamedTuple):
    id: str
    organization_id: str
    room_name: str
    template_type: str | None
    start_date: datetime
    end_date: datetime


# The live meeting by id for SQLite's synchronous point read: the columns a response needs
# (herewith.meetings.service.MeetingRecord) and the owner.
_LIVE_BY_ID_INLINE = InlineQuery(
    select(*(_meetings.c[k] for k in InlineMeetingRow._fields))
    .where(_meetings.c.id == bindparam("id"), _meetings.c.deleted_at.is_(None))
)


def live_row_by_id_inline(reader: InlineReader, meeting_id: str) -> InlineMeetingRow | None:
    """The live (not deleted) meeting with that id, read synchronously on SQLite, or None. Raises
    :class:`~herewith.db.sqlite_inline.InlineReadUnavailable` when SQLite is busy."""
    rows = reader.rows(_LIVE_BY_ID_INLINE, {"id": meeting_id})
    return InlineMeetingRow(*rows[0]) if rows else None


async def live_rows_by_ids(conn: AsyncConnection, meeting_ids: Iterable[str]) -> dict[str, Row[Any]]:
    """``{id: row}`` of the live (not deleted) meetings among ``meeting_ids``; rows carry the columns as
    attributes."""
    return {row.id: row for row in await conn.execute(_LIVE_BY_IDS, {"ids": list(meeting_ids)})}


async def get_for_organization(session: AsyncSession, organization_id: str, meeting_id: str) -> Meeting | None:
    """The live (not deleted) meeting with that id owned by that organization."""
    return await session.scalar(
        select(Meeting).where(
            Meeting.id == meeting_id, Meeting.organization_id == organization_id, Meeting.deleted_at.is_(None)
        )
    )


async def get_by_room_name(session: AsyncSession, room_name: str) -> Meeting | None:
    """The meeting of a room (deleted ones included, so callers can tell 410 from 404)."""
    return await session.scalar(select(Meeting).where(Meeting.room_name == room_name))


async def list_page(
    session: AsyncSession, organization_id: str, after_seq: int | None, limit: int, room_name_prefix: str | None
) -> Sequence[Meeting]:
    """Up to ``limit`` live meetings with ``seq`` greater than ``after_seq``, oldest first."""
    stmt = select(Meeting).where(Meeting.organization_id == organization_id, Meeting.deleted_at.is_(None))
    if after_seq is not None:
        stmt = stmt.where(Meeting.seq > after_seq)
    if room_name_prefix:
        escaped = room_name_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Meeting.room_name.like(escaped + "%", escape="\\"))
    return (await session.scalars(stmt.order_by(Meeting.seq).limit(limit))).all()
