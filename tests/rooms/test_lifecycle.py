"""Room lifecycle with a controllable clock (CONTRACT.md "Meetings", Lifecycle).

Deactivation at endDate + 1 h (hooks told "expired", session ended, no webhooks after, host keys void),
deletion by endDate + 24 h, catch-up after downtime, row claiming with SKIP LOCKED on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from herewith.auth.room_keys import InvalidRoomKey, verify_room_key
from herewith.config import Settings
from herewith.kit.time import format_utc, parse_datetime
from herewith.meetings.models import Meeting
from herewith.jobs.sweeper import sweep_once
from tests.webhooks.helpers import Receiver, Room, await_for, person


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, secret_key="test-secret-key-0123456789abcdef",
                    background_tasks=True, sweeper_interval_seconds=0.1, webhook_poll_seconds=0.05)


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def _meeting_row(server, meeting_id: str) -> Meeting:
    async def get() -> Meeting:
        async with server.services.sessionmaker() as s:
            return await s.scalar(select(Meeting).where(Meeting.id == meeting_id))

    return server.run_coro(get())


async def _create(client, server, minutes: int = 10) -> dict:
    end = format_utc(server.clock.now() + timedelta(minutes=minutes))
    r = await client.post("/meetings", json={"endDate": end, "fields": ["hostRoomUrl"]})
    assert r.status_code == 201, r.text
    return r.json()


async def test_deactivation_at_end_plus_one_hour_then_deletion(client, server, org, receiver):
    told: list[tuple[str, str]] = []

    async def hook(meeting, reason):  # noqa: ANN001 - a MeetingEvents subscriber, as signaling is
        told.append((meeting.id, reason))

    server.services.meeting_events.subscribe(hook)
    await client.post("/webhooks", json={"url": receiver.url})
    meeting = await _create(client, server)
    end = parse_datetime(meeting["endDate"])
    room = Room(server, meeting, org.organization_id)
    a, b = room.join(person("Ann", "host")), room.join(person("Bob"))
    await await_for(lambda: len(receiver.received) == 3)  # joined, joined, session.started
    host_key = meeting["hostRoomUrl"].split("roomKey=")[1]
    secret = server.settings.signing_key

    # Just before endDate + 1 h: still active, host rights valid.
    server.clock.advance((end + timedelta(hours=1) - server.clock.now()).total_seconds() - 2)
    await asyncio.sleep(0.4)
    assert _meeting_row(server, meeting["meetingId"]).deactivated_at is None and told == []
    verify_room_key(secret, host_key, meeting["roomName"], server.clock.now())

    # endDate + 1 h: deactivated, participants told and disconnected (hook "expired"), host rights void.
    server.clock.advance(3)
    await await_for(lambda: told)
    assert told == [(meeting["meetingId"], "expired")]
    row = _meeting_row(server, meeting["meetingId"])
    assert row.deactivated_at is not None and row.deleted_at is None
    assert row.deactivated_at >= end + timedelta(hours=1)
    with pytest.raises(InvalidRoomKey):
        verify_room_key(secret, host_key, meeting["roomName"], server.clock.now())
    async with httpx.AsyncClient() as web:
        page = await web.get(server.base_url + meeting["roomName"])
        assert page.status_code == 410  # the room page: "This meeting is over"

    # The session was ended at deactivation, without webhooks; leaves after it give none either.
    room.leave(a)
    room.leave(b)
    room.knock(person("Late"))
    await asyncio.sleep(0.5)
    assert receiver.types() == ["room.client.joined", "room.client.joined", "room.session.started"]
    sessions = (await client.get("/insights/room-sessions", params={"roomName": meeting["roomName"]})).json()["results"]
    assert len(sessions) == 1 and sessions[0]["endedAt"] == format_utc(row.deactivated_at)
    parts = (await client.get("/insights/participants", params={"roomSessionId": sessions[0]["roomSessionId"]})).json()
    assert all(p["leftAt"] == format_utc(row.deactivated_at) for p in parts["results"])

    # Deleted by endDate + 24 h (the default deletes at + 23 h); insights keep the history.
    server.clock.advance(22 * 3600 - 10)
    await asyncio.sleep(0.4)
    assert _meeting_row(server, meeting["meetingId"]).deleted_at is None
    server.clock.advance(20)  # endDate + 23 h + 11 s
    await await_for(lambda: _meeting_row(server, meeting["meetingId"]).deleted_at is not None)
    assert _meeting_row(server, meeting["meetingId"]).deleted_at <= end + timedelta(hours=24)
    assert (await client.get(f"/meetings/{meeting['meetingId']}")).status_code == 404
    assert told == [(meeting["meetingId"], "expired")]  # told once
    rooms = (await client.get("/insights/rooms")).json()["results"]
    assert [r["roomName"] for r in rooms] == [meeting["roomName"]]


async def test_catch_up_after_downtime_deactivates_and_deletes_in_one_sweep(client, server, org):
    meetings = [await _create(client, server, minutes=m) for m in (1, 2, 2400)]
    later = server.clock.now() + timedelta(hours=30)

    async def sweep():
        async with server.services.sessionmaker() as s:
            result = await sweep_once(s, later, server.settings)
            await s.commit()
            return result

    result = server.run_coro(sweep())
    assert {m.id for m in result.deactivated} == {meetings[0]["meetingId"], meetings[1]["meetingId"]}
    assert {m.id for m in result.deleted} == {meetings[0]["meetingId"], meetings[1]["meetingId"]}
    again = server.run_coro(sweep())
    assert again.deactivated == [] and again.deleted == []
    assert _meeting_row(server, meetings[2]["meetingId"]).deactivated_at is None


async def test_sweepers_in_two_processes_claim_disjoint_rows(client, server, org, db_kind):
    if db_kind != "postgresql":
        pytest.skip("row claiming with SKIP LOCKED is a PostgreSQL feature; SQLite has a single writer")
    for _ in range(3):
        await _create(client, server, minutes=1)
    later = server.clock.now() + timedelta(hours=2)

    async def two_sweepers():
        maker = server.services.sessionmaker
        async with maker() as first, maker() as second:
            r1 = await sweep_once(first, later, server.settings, limit=2)  # holds its two rows locked
            r2 = await sweep_once(second, later, server.settings)  # skips them, takes the third
            await first.commit()
            await second.commit()
            return r1, r2

    r1, r2 = server.run_coro(two_sweepers())
    ids1, ids2 = {m.id for m in r1.deactivated}, {m.id for m in r2.deactivated}
    assert len(ids1) == 2 and len(ids2) == 1 and not ids1 & ids2
