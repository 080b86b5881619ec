"""The limiter through a real server (CONTRACT.md "Rate limiting"): headers on every /v1 response, the
contract's 429, a throttled request does no work, fail open / closed when Redis is away."""

from __future__ import annotations

import email.utils
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from herewith.config import Settings
from herewith.db.engine import create_engine, create_sessionmaker
from herewith.ratelimit import ManualClock
from herewith.ratelimit import service as ratelimit_service
from tests.support.servers import OrgKey, ThreadServer, create_org_key

REDIS_URL = "redis://127.0.0.1:6379/0"
END = {"endDate": "2099-02-18T14:23:00.000Z"}


async def set_limit(settings: Settings, org_id: str, **kw) -> None:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            await ratelimit_service.set_limit(session, org_id, **kw)
            await session.commit()
    finally:
        await engine.dispose()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["memory", "redis"])
def rl_server(request, settings: Settings) -> Iterator[ThreadServer]:
    """A real server whose limiter is in-process or on Redis (a fresh key prefix), with a manual clock."""
    if request.param == "redis":
        settings = settings.model_copy(update={"redis_url": REDIS_URL, "ratelimit_prefix": f"test:rl:{uuid.uuid4().hex}:"})
    else:
        settings = settings.model_copy(update={"redis_url": None})
    srv = ThreadServer(settings).start()
    srv.rl_clock = ManualClock(time.time())  # type: ignore[attr-defined]
    srv.services.limiter.clock = srv.rl_clock
    yield srv
    srv.stop()


@pytest.fixture
async def rl_org(rl_server: ThreadServer) -> OrgKey:
    return await create_org_key(rl_server.settings, "Limited org")


@pytest.fixture
async def rl_client(rl_server: ThreadServer, rl_org: OrgKey) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=rl_server.base_url + "/v1", headers=rl_org.headers, timeout=30) as c:
        yield c


def _reset(resp: httpx.Response) -> float:
    return email.utils.parsedate_to_datetime(resp.headers["X-RateLimit-Reset"]).timestamp()


async def test_headers_on_every_v1_response(rl_server, rl_client):
    now = rl_server.rl_clock()
    r = await rl_client.get("/meetings")
    assert r.status_code == 200
    assert r.headers["X-RateLimit-Limit"] == "1000"
    assert r.headers["X-RateLimit-Remaining"] == "999"
    assert r.headers["X-RateLimit-Reset"].endswith(" GMT")
    assert now + 60 <= _reset(r) <= now + 61
    r = await rl_client.post("/meetings", json=END)
    assert r.status_code == 201 and r.headers["X-RateLimit-Remaining"] == "996"
    meeting_id = r.json()["meetingId"]
    r = await rl_client.get("/meetings/does-not-exist")  # errors carry the headers too
    assert r.status_code == 404 and r.headers["X-RateLimit-Remaining"] == "995"
    r = await rl_client.post("/meetings", json={"endDate": "yesterday"})
    assert r.status_code == 400 and r.headers["X-RateLimit-Remaining"] == "992"
    r = await rl_client.delete(f"/meetings/{meeting_id}")
    assert r.status_code == 204 and r.headers["X-RateLimit-Remaining"] == "990"
    assert "Retry-After" not in r.headers


async def test_unauthenticated_is_not_charged(rl_server, rl_client):
    async with httpx.AsyncClient(base_url=rl_server.base_url + "/v1") as anon:
        r = await anon.get("/meetings")
    assert r.status_code == 401 and "X-RateLimit-Limit" not in r.headers
    assert (await rl_client.get("/meetings")).headers["X-RateLimit-Remaining"] == "999"


async def test_throttled_post_returns_429_and_creates_nothing(rl_server, rl_client, rl_org):
    await set_limit(rl_server.settings, rl_org.organization_id, points=9)
    for i in range(3):
        r = await rl_client.post("/meetings", json=END)
        assert r.status_code == 201
        assert r.headers["X-RateLimit-Limit"] == "9"
        assert r.headers["X-RateLimit-Remaining"] == str(6 - 3 * i)
    r = await rl_client.post("/meetings", json=END)
    assert r.status_code == 429
    assert r.json() == {
        "error": f"Rate limit active for throttle key: organization:{rl_org.organization_id}",
        "data": {"msLeft": 60_000},
    }
    assert r.headers["Retry-After"] == "60"
    assert r.headers["X-RateLimit-Limit"] == "9"
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert abs(_reset(r) - (rl_server.rl_clock() + 60)) <= 1
    # more throttled requests, of every kind: none does any work or costs anything
    for _ in range(5):
        assert (await rl_client.post("/meetings", json=END)).status_code == 429
        assert (await rl_client.get("/meetings")).status_code == 429
    rl_server.rl_clock.advance(20)
    r = await rl_client.get("/meetings")
    assert r.status_code == 429 and r.json()["data"]["msLeft"] == 40_000 and r.headers["Retry-After"] == "40"
    # once the window has moved, the budget is back: exactly 3 meetings exist
    rl_server.rl_clock.advance(40)
    r = await rl_client.get("/meetings")
    assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "8"
    assert len(r.json()["results"]) == 3


async def test_plan_build_budget(rl_server, rl_client, rl_org):
    await set_limit(rl_server.settings, rl_org.organization_id, plan="build")
    for _ in range(50):
        assert (await rl_client.delete(f"/meetings/{uuid.uuid4()}")).status_code == 204
    r = await rl_client.get("/meetings")
    assert r.status_code == 429 and r.headers["X-RateLimit-Limit"] == "100"


async def test_budget_is_per_organization(rl_server, rl_client, rl_org):
    await set_limit(rl_server.settings, rl_org.organization_id, points=1)
    assert (await rl_client.get("/meetings")).status_code == 200
    assert (await rl_client.get("/meetings")).status_code == 429
    other = await create_org_key(rl_server.settings, "Other org")
    async with httpx.AsyncClient(base_url=rl_server.base_url + "/v1", headers=other.headers) as c:
        r = await c.get("/meetings")
    assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "999"


@pytest.mark.parametrize("fail_open", [True, False])
async def test_redis_unreachable(settings: Settings, fail_open: bool):
    settings = settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{_closed_port()}/0", "ratelimit_fail_open": fail_open}
    )
    srv = ThreadServer(settings).start()
    try:
        org = await create_org_key(srv.settings)
        async with httpx.AsyncClient(base_url=srv.base_url + "/v1", headers=org.headers, timeout=10) as c:
            t = time.perf_counter()
            r = await c.post("/meetings", json=END)
            assert time.perf_counter() - t < 2
            if fail_open:
                assert r.status_code == 201
                assert r.headers["X-RateLimit-Limit"] == "1000"
                assert (await c.get("/meetings")).status_code == 200  # the API keeps answering
            else:
                assert r.status_code == 503 and r.headers["Retry-After"] == "1"
                assert r.json() == {"error": "Rate limiter unavailable"}
                r = await c.get("/meetings")
                assert r.status_code == 503
    finally:
        srv.stop()


async def test_limiter_off(settings: Settings):
    srv = ThreadServer(settings.model_copy(update={"ratelimit_enabled": False})).start()
    try:
        org = await create_org_key(srv.settings)
        async with httpx.AsyncClient(base_url=srv.base_url + "/v1", headers=org.headers) as c:
            r = await c.get("/meetings")
        assert r.status_code == 200 and "X-RateLimit-Limit" not in r.headers
    finally:
        srv.stop()
