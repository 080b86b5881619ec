"""All SQL of the meetings domain."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import JSON, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from herewith.auth.models import ApiKey
from herewith.db.sqlite_inline import InlineQuery, InlineReader
from herewith.meetings.models import Meeting

_meetings = Meeting.__table__
_keys = ApiKey.__table__
# The statements of the hot calls (POST and GET /v1/meetings/{id}) are built once, on table columns:
# building a statement costs ten times what SQLite takes to run it, and the ORM adds as much again.


class _CheckedRowInsert:
    """Any dialect: ``INSERT ... SELECT <the row> WHERE <its API key is unrevoked and the organization's>``,
    compiled once: the driver's SQL text and each parameter's bind processor, for one ``executemany`` of
    ready tuples per batch; the driver's row count tells whether every row went in.

    Executing a Core insert converts every parameter through SQLAlchemy's execution context, which
    measured about twice what SQLite itself takes per row for batches of five; compiled here, a batch is
    one ``exec_driver_sql`` (same types, same conversions).
    """

    def __init__(self, dialect: Any) -> None:
        columns = [c for c in _meetings.columns if c.key != "seq"]
        key_ok = (select(_keys.c.id)
                  .where(_keys.c.id == bindparam("key_id"), _keys.c.organization_id == bindparam("key_organization_id"),
                         _keys.c.revoked_at.is_(None))
                  .exists())
        values = select(*(bindparam(c.key, type_=c.type) for c in columns)).where(key_ok)
        compiled = insert(_meetings).from_select([c.key for c in columns], values).compile(dialect=dialect)
        self.sql = str(compiled)
        self.keys = tuple(compiled.positiontup or ())
        assert set(self.keys) == {c.key for c in columns} | {"key_id", "key_organization_id"}, \
            "the driver's paramstyle must be positional"
        types = {c.key: c.type for c in columns}
        self.processors = tuple(types[k].bind_processor(dialect) if k in types else None for k in self.keys)

    def params(self, rows: list[tuple[dict[str, Any], str]]) -> list[tuple[Any, ...]]:
        pairs = tuple(zip(self.keys, self.processors))
        out = []
        for values, key_id in rows:
            values = {**values, "key_id": key_id, "key_organization_id": values["organization_id"]}
            out.append(tuple(values[k] if p is None else p(values[k]) for k, p in pairs))
        return out


_checked_row_inserts: dict[str, _CheckedRowInsert] = {}


async def insert_meetings_checked_rows(conn: AsyncConnection, rows: list[tuple[dict[str, Any], str]]) -> int:
    """Insert ``(meeting row, API key id)`` pairs (one executemany), each only if its key is unrevoked and
    belongs to the row's organization; returns how many went in. Raises IntegrityError when a
    ``room_name`` or ``id`` is taken."""
    prepared = _checked_row_inserts.get(conn.dialect.name)
    if prepared is None:
        prepared = _checked_row_inserts[conn.dialect.name] = _CheckedRowInsert(conn.dialect)
    return (await conn.exec_driver_sql(prepared.sql, prepared.params(rows))).rowcount


class _CheckedInsertPG:
    """PostgreSQL: a batch of meetings inserted by one statement that checks each row's API key.

    ``INSERT ... SELECT FROM unnest(<one array per column>, <key ids>) WHERE <the key is unrevoked and the
    organization's> ON CONFLICT DO NOTHING RETURNING id``: the rows of revoked keys and the rows whose
    room name (or id) is taken are left out, and the ids that come back are the rows inserted. One round
    trip whatever the batch size; atomic like every statement. Written for PostgreSQL because SQLAlchemy
    has no construct for ``unnest`` of parallel arrays (the column list and types come from the table).
    """

    def __init__(self, dialect: Any) -> None:
        columns = [c for c in _meetings.columns if c.key != "seq"]
        self.keys = tuple(c.key for c in columns)
        self.json = tuple(isinstance(c.type, JSON) for c in columns)
        self.processors = tuple(None if j else c.type.bind_processor(dialect) for c, j in zip(columns, self.json))
        names = ", ".join(c.name for c in columns)
        arrays = ", ".join(f"${i}::text[]" if j else f"${i}::{c.type.compile(dialect=dialect)}[]"
                           for i, (c, j) in enumerate(zip(columns, self.json), 1))
        values = ", ".join(f"v.{c.name}::json" if j else f"v.{c.name}" for c, j in zip(columns, self.json))
        self.sql = (
            f"INSERT INTO {_meetings.name} ({names}) SELECT {values} "
            f"FROM unnest({arrays}, ${len(columns) + 1}::text[]) AS v({names}, key_id) "
            f"WHERE EXISTS (SELECT 1 FROM {_keys.name} k WHERE k.id = v.key_id "
            "AND k.organization_id = v.organization_id AND k.revoked_at IS NULL) "
            "ON CONFLICT DO NOTHING RETURNING id"
        )

    def params(self, rows: list[tuple[dict[str, Any], str]]) -> tuple[list[Any], ...]:
        out = []
        for key, is_json, process in zip(self.keys, self.json, self.processors):
            column = [values[key] for values, _ in rows]
            if is_json:
                column = [None if v is None else json.dumps(v) for v in column]
            elif process is not None:
                column = [process(v) for v in column]
            out.append(column)
        out.append([key_id for _, key_id in rows])
        return tuple(out)


_checked_inserts: dict[str, _CheckedInsertPG] = {}


async def insert_meetings_checked(conn: AsyncConnection, rows: list[tuple[dict[str, Any], str]]) -> set[str]:
    """PostgreSQL: insert ``(meeting row, API key id)`` pairs in one statement; only rows whose key is
    unrevoked and belongs to the row's organization, and whose ``id`` and ``room_name`` are free, are
    inserted. Returns the ids of the inserted rows (never raises IntegrityError for those)."""
    prepared = _checked_inserts.get(conn.dialect.name)
    if prepared is None:
        prepared = _checked_inserts[conn.dialect.name] = _CheckedInsertPG(conn.dialect)
    return set((await conn.exec_driver_sql(prepared.sql, prepared.params(rows))).scalars())


class InlineMeetingRow(NamedTuple):
    id: str
    organization_id: str
    room_name: str
    template_type: str | None
    start_date: datetime
    end_date: datetime


# Live meetings by id together with the unrevoked keys of their organization among the asking keys: the
# single-meeting read, which checks the key in the statement that reads the meeting. The columns are
# those a response needs (herewith.meetings.service.MeetingRecord) and the owner.
_LIVE_FOR_KEYS = (
    select(*(_meetings.c[k] for k in InlineMeetingRow._fields), _keys.c.id)
    .join_from(_meetings, _keys, _keys.c.organization_id == _meetings.c.organization_id)
    .where(_keys.c.revoked_at.is_(None), _meetings.c.deleted_at.is_(None))
)
_LIVE_BY_IDS_FOR_KEYS = _LIVE_FOR_KEYS.where(_meetings.c.id.in_(bindparam("ids", expanding=True)),
                                             _keys.c.id.in_(bindparam("key_ids", expanding=True)))
# One pair, for SQLite's synchronous point read.
_LIVE_BY_ID_FOR_KEY_INLINE = InlineQuery(
    _LIVE_FOR_KEYS.where(_meetings.c.id == bindparam("id"), _keys.c.id == bindparam("key_id")))


def live_row_for_key_inline(reader: InlineReader, key_id: str, meeting_id: str) -> InlineMeetingRow | None:
    """The live (not deleted) meeting with that id if ``key_id`` is an unrevoked key of its organization,
    read synchronously on SQLite, or None. Raises
    :class:`~herewith.db.sqlite_inline.InlineReadUnavailable` when SQLite is busy."""
    rows = reader.rows(_LIVE_BY_ID_FOR_KEY_INLINE, {"id": meeting_id, "key_id": key_id})
    return InlineMeetingRow(*rows[0][:-1]) if rows else None


async def live_rows_for_keys(conn: AsyncConnection, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], InlineMeetingRow]:
    """``{(key id, meeting id): row}`` for those ``(key id, meeting id)`` pairs where the meeting is live (not
    deleted) and the key is unrevoked and of the meeting's organization."""
    pairs = list(pairs)
    params = {"ids": list({m for _, m in pairs}), "key_ids": list({k for k, _ in pairs})}
    return {(row[-1], row[0]): InlineMeetingRow(*row[:-1]) for row in await conn.execute(_LIVE_BY_IDS_FOR_KEYS, params)}


async def get_for_organization(session: AsyncSession, organization_id: str, meeting_id: str) -> Meeting | None:
    """The live (not deleted) meeting with that id owned by that organization."""
    return await session.scalar(
        select(Meeting).where(
            Meeting.id == meeting_id, Meeting.organization_id == organization_id, Meeting.deleted_at.is_(None)
        )
    )


async def get_by_id(session: AsyncSession, meeting_id: str) -> Meeting | None:
    """The meeting with that id, whatever its state (deleted and deactivated ones included)."""
    return await session.get(Meeting, meeting_id)


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
