"""``createdAt[from|to]`` of ``/v1/insights/rooms`` are bounded dates: nothing computed from them can overflow
(herewith.insights.service.parse_date). SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

RANGE = "must be between 1970-01-01T00:00:00.000Z and 9999-01-01T00:00:00.000Z"


@pytest.mark.parametrize("field,value", [
    ("createdAt[to]", "9999-12-31T23:59:59.999999Z"),  # + 1 ms overflowed
    ("createdAt[to]", "9999-06-01T00:00:00Z"),
    ("createdAt[from]", "9999-12-31T23:59:59-01:00"),  # year 10000 in UTC
    ("createdAt[from]", "0001-01-01T00:00:00+01:00"),  # year 0 in UTC
    ("createdAt[to]", "1969-12-31T23:59:59Z"),
])
async def test_dates_outside_the_range_are_a_400_naming_the_filter(client: httpx.AsyncClient, field: str,
                                                                   value: str) -> None:
    r = await client.get("/insights/rooms", params={field: value})
    assert r.status_code == 400, r.text
    assert r.json() == {"error": f"Invalid {field}: {RANGE}", "data": {field: RANGE}}


@pytest.mark.parametrize("params", [
    {"createdAt[from]": "1970-01-01T00:00:00Z", "createdAt[to]": "9998-12-31T23:59:59.999Z"},
    {"createdAt[to]": "2000-01-01T00:00:00-05:00"},
])
async def test_dates_inside_the_range_filter(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    r = await client.post("/meetings", json={"endDate": "2099-02-18T14:23:00Z"})
    assert r.status_code == 201
    r = await client.get("/insights/rooms", params=params)
    assert r.status_code == 200, r.text
    assert r.json() == {"cursor": None, "results": []}  # no sessions yet
