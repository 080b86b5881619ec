"""A revoked API key is refused (401) on its very next request, whatever its organization's rate budget: the key
is looked up in the database on every request, before the rate-limit charge (CONTRACT.md, "Authentication"
and "Rate limiting"). On SQLite and PostgreSQL, revoked from outside the server (as ``herewith keys revoke``
does: its own engine and session)."""

from __future__ import annotations

import httpx

from herewith.auth import service as auth_service
from herewith.config import Settings
from herewith.db.engine import create_engine, create_sessionmaker
from herewith.ratelimit import service as ratelimit_service

END = {"endDate": "2099-02-18T14:23:00.000Z"}
UNAUTHORIZED = (401, {"error": "Access token is missing or invalid"})


async def _in_db(settings: Settings, work) -> object:  # noqa: ANN001
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            result = await work(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


async def test_revoked_key_gets_401_not_429_when_its_organization_is_over_budget(server, client, org) -> None:  # noqa: ANN001
    settings = server.settings

    async def budget_of_six(session) -> None:  # noqa: ANN001
        await ratelimit_service.set_limit(session, org.organization_id, points=6)

    await _in_db(settings, budget_of_six)
    made = await client.post("/meetings", json=END)  # 3 points
    assert made.status_code == 201
    meeting_id = made.json()["meetingId"]
    assert (await client.get(f"/meetings/{meeting_id}")).status_code == 200  # 4
    assert (await client.delete("/meetings/no-such-meeting")).status_code == 204  # 6: the budget is spent
    throttled = await client.get("/meetings")
    assert throttled.status_code == 429 and throttled.headers["X-RateLimit-Remaining"] == "0"

    async def revoke(session) -> None:  # noqa: ANN001
        (key,) = await auth_service.list_api_keys(session, org.organization_id)
        await auth_service.revoke_api_key(session, key.id)

    await _in_db(settings, revoke)
    refused = [
        await client.get("/meetings"),
        await client.post("/meetings", json=END),
        await client.post("/meetings", json={"endDate": "yesterday"}),  # a 401 first, not the 400
        await client.get(f"/meetings/{meeting_id}"),
        await client.delete(f"/meetings/{meeting_id}"),
    ]
    for r in refused:
        assert (r.status_code, r.json()) == UNAUTHORIZED, r.request
        assert "X-RateLimit-Limit" not in r.headers  # not charged: refused before the limiter

    async def fresh_key(session) -> str:  # noqa: ANN001
        return (await auth_service.create_api_key(session, org.organization_id, "new"))[1]

    # The organization is still over its budget: a valid key of it is throttled.
    new_key = await _in_db(settings, fresh_key)
    async with httpx.AsyncClient(base_url=server.base_url + "/v1",
                                 headers={"Authorization": f"Bearer {new_key}"}) as again:
        assert (await again.get(f"/meetings/{meeting_id}")).status_code == 429
