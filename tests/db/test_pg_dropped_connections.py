"""PostgreSQL closes the server's pooled connections (a restart, an administrator's
``pg_terminate_backend``): the next requests get fresh connections and succeed."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy.engine import make_url

FUTURE = "2099-02-18T14:23:00.000Z"


async def _terminate_other_backends(database_url: str) -> int:
    url = make_url(database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        return len(await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    finally:
        await conn.close()


async def test_requests_after_postgresql_closed_every_connection(server, client, db_kind, database_url) -> None:  # noqa: ANN001
    if db_kind != "postgresql":
        pytest.skip("PostgreSQL connections")
    # Fill the pool: the engine holds several connections.
    made = await asyncio.gather(*(client.post("/meetings", json={"endDate": FUTURE}) for _ in range(8)))
    assert {r.status_code for r in made} == {201}
    assert (await client.get("/meetings")).status_code == 200
    assert await _terminate_other_backends(database_url) >= 2
    await asyncio.sleep(0.2)  # the server's event loop sees the connections close
    after = await asyncio.gather(
        *(client.post("/meetings", json={"endDate": FUTURE}) for _ in range(8)),
        *(client.get(f"/meetings/{r.json()['meetingId']}") for r in made),
        client.get("/meetings"),
    )
    assert [r.status_code for r in after] == [201] * 8 + [200] * 9
    listed = (await client.get("/meetings", params={"limit": 100})).json()["results"]
    assert len(listed) == 16


async def _allow_connections(database_url: str, allow: bool) -> None:
    url = make_url(database_url)
    admin = url.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await conn.execute(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                               url.database)
    finally:
        await conn.close()


async def test_database_unreachable_is_a_503_then_recovers(server, client, db_kind, database_url) -> None:  # noqa: ANN001
    """While PostgreSQL refuses every connection to the database, the API answers 503 in the contract's error
    body with Retry-After (nothing acknowledged, no 500); once it accepts them again, the same calls succeed."""
    if db_kind != "postgresql":
        pytest.skip("PostgreSQL refusing connections")
    assert (await client.post("/meetings", json={"endDate": FUTURE})).status_code == 201
    await _allow_connections(database_url, False)
    try:
        await asyncio.sleep(0.2)
        refused = await asyncio.gather(client.post("/meetings", json={"endDate": FUTURE}), client.get("/meetings"))
        for r in refused:
            assert r.status_code == 503, r.text
            assert r.json() == {"error": "The database is unavailable, retry shortly"}
            assert r.headers["Retry-After"] == "1"
    finally:
        await _allow_connections(database_url, True)
    again = await client.post("/meetings", json={"endDate": FUTURE})
    assert again.status_code == 201, again.text
    assert len((await client.get("/meetings")).json()["results"]) == 2
