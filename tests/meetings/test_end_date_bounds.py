"""``endDate`` is bounded so that no date arithmetic on it can overflow, and a failed create stores nothing
(docs/api.md, "Meetings"; herewith.meetings.service.MAX_END_DATE_AHEAD). SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from herewith.meetings import service
from herewith.meetings.service import MAX_END_DATE_AHEAD
from tests.support.servers import ThreadServer

TOO_FAR = "must be at most 100 years (36525 days) from now"
OUT_OF_RANGE = "must be an ISO-8601 date-time between the years 1 and 9999 (UTC)"


async def meeting_count(client: httpx.AsyncClient) -> int:
    r = await client.get("/meetings", params={"limit": 100})
    assert r.status_code == 200, r.text
    return len(r.json()["results"])


@pytest.mark.parametrize("fields", [None, ["hostRoomUrl", "viewerRoomUrl"]])
async def test_a_far_future_end_date_is_a_400_and_nothing_is_stored(client: httpx.AsyncClient, fields) -> None:
    body = {"endDate": "9999-12-31T23:30:00Z"} | ({"fields": fields} if fields else {})
    r = await client.post("/meetings", json=body)
    assert r.status_code == 400, r.text
    assert r.json() == {"error": f"Invalid endDate: {TOO_FAR}", "data": {"endDate": TOO_FAR}}
    assert await meeting_count(client) == 0
    r = await client.get("/meetings", params={"fields": "hostRoomUrl"})
    assert r.status_code == 200 and r.json() == {"results": [], "cursor": None}


@pytest.mark.parametrize("end_date", [
    "9999-12-31T23:59:59-01:00",  # year 10000 in UTC
    "0001-01-01T00:00:00+01:00",  # year 0 in UTC
])
async def test_an_end_date_outside_the_calendar_in_utc_is_a_400(client: httpx.AsyncClient, end_date: str) -> None:
    r = await client.post("/meetings", json={"endDate": end_date, "fields": ["hostRoomUrl"]})
    assert r.status_code == 400, r.text
    assert r.json()["data"] == {"endDate": OUT_OF_RANGE}
    assert await meeting_count(client) == 0


async def test_the_bound_is_100_years_from_now(client: httpx.AsyncClient) -> None:
    now = datetime.now(timezone.utc)
    inside = (now + MAX_END_DATE_AHEAD - timedelta(minutes=5)).isoformat()
    outside = (now + MAX_END_DATE_AHEAD + timedelta(minutes=5)).isoformat()
    r = await client.post("/meetings", json={"endDate": inside, "fields": ["hostRoomUrl", "viewerRoomUrl"]})
    assert r.status_code == 201, r.text
    r = await client.post("/meetings", json={"endDate": outside})
    assert r.status_code == 400 and r.json()["data"] == {"endDate": TOO_FAR}
    r = await client.get("/meetings", params={"fields": "hostRoomUrl,viewerRoomUrl"})
    assert r.status_code == 200 and len(r.json()["results"]) == 1
    room = r.json()["results"][0]
    page = httpx.get(room["hostRoomUrl"])
    assert page.status_code == 200


async def test_a_failure_after_the_insert_leaves_no_row(client: httpx.AsyncClient, server: ThreadServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The request session commits only when the endpoint returns: a 500 raised after the INSERT was
    flushed rolls it back (herewith.deps.get_session)."""

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("fails after the INSERT")

    monkeypatch.setattr(service, "to_out", broken)
    r = await client.post("/meetings", json={"endDate": "2099-02-18T14:23:00Z"})
    assert r.status_code == 500 and r.json() == {"error": "Internal server error"}
    monkeypatch.undo()
    # a new connection: uvicorn closes the one a 500 went out on
    async with httpx.AsyncClient(base_url=str(client.base_url), headers=client.headers) as fresh:
        assert await meeting_count(fresh) == 0


async def test_a_meeting_stored_with_the_last_end_date_still_lists_shows_and_joins(
        client: httpx.AsyncClient, server: ThreadServer) -> None:
    """A meeting that reached the database with endDate 9999-12-31 (before the bound existed) keeps working:
    endDate + 1 h is clamped to the calendar's end (herewith.kit.time.add_clamped) wherever it is used."""
    from sqlalchemy import update

    from herewith.meetings.models import Meeting
    from tests.signaling.helpers import Client

    created = (await client.post("/meetings", json={"endDate": "2099-01-01T00:00:00Z"})).json()
    last = datetime(9999, 12, 31, 23, 30, tzinfo=timezone.utc)

    async def store_last_end_date() -> None:  # on the server's loop: its engine belongs there
        async with server.services.sessionmaker() as session:
            await session.execute(update(Meeting).where(Meeting.id == created["meetingId"]).values(end_date=last))
            await session.commit()

    await asyncio.to_thread(server.run_coro, store_last_end_date())
    r = await client.get("/meetings", params={"fields": "hostRoomUrl"})
    assert r.status_code == 200, r.text
    host_url = r.json()["results"][0]["hostRoomUrl"]
    async with httpx.AsyncClient() as browser:
        page = await browser.get(host_url)
        assert page.status_code == 200, page.text
    async with Client(server.ws_url, created["roomName"]) as ann:
        joined = await ann.join(displayName="Ann", roomKey=host_url.split("roomKey=")[1])
        assert joined["type"] == "joined" and joined["role"] == "host"
