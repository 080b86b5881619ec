"""Two ``herewith serve`` processes on one Redis and one PostgreSQL database share one budget exactly.

Several clients (two API keys of one organization) load both processes concurrently with GET, DELETE and
POST. From the responses alone the test checks that no window admitted more points than the budget and
that every window admitted nearly all of it (>= 90%). The window is a setting
(``HEREWITH_RATELIMIT_WINDOW_SECONDS``) so the test runs four windows in ~25 s instead of four minutes.

A response is known to have been admitted somewhere between sending and receiving it, so:
- upper bound (sound): for every window ``[a, a + W)`` starting at a send time, the points of requests
  sent at or after ``a`` and answered before ``a + W`` are at most the budget;
- lower bound: for consecutive windows, the points of requests that may lie in it are >= 90% of the budget.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass

import httpx
import pytest

from herewith.auth import service as auth_service
from herewith.config import Settings
from herewith.db.engine import create_engine, create_sessionmaker
from herewith.ratelimit import cost_of
from herewith.ratelimit import service as ratelimit_service
from tests.support.servers import ProcessServer, create_org_key, create_pg_database, drop_pg_database

BUDGET = 60
WINDOW = 5.0
WINDOWS = 4
CLIENTS = 8
REDIS_URL = "redis://127.0.0.1:6379/0"
END = {"endDate": "2099-02-18T14:23:00.000Z"}


@dataclass
class Admitted:
    sent: float
    received: float
    points: int


async def _prepare(settings: Settings) -> list[str]:
    """An organization with a custom budget and two API keys; returns the keys."""
    org = await create_org_key(settings, "Shared budget")
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            await ratelimit_service.set_limit(session, org.organization_id, points=BUDGET)
            _, second = await auth_service.create_api_key(session, org.organization_id, "second")
            await session.commit()
    finally:
        await engine.dispose()
    return [org.api_key, second]


@pytest.fixture
def pg_url():
    url = create_pg_database()
    yield url
    drop_pg_database(url)


async def test_two_processes_share_one_budget(tmp_path, pg_url):
    prefix = f"test:rl:{uuid.uuid4().hex}:"
    settings = Settings(data_dir=tmp_path / "data", database_url=pg_url, secret_key="test-secret-key-0123456789abcdef")
    keys = await _prepare(settings)
    env = {
        "HEREWITH_DATA_DIR": str(tmp_path / "data"),
        "HEREWITH_DATABASE_URL": pg_url,
        "HEREWITH_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "HEREWITH_REDIS_URL": REDIS_URL,
        "HEREWITH_RATELIMIT_PREFIX": prefix,
        "HEREWITH_RATELIMIT_WINDOW_SECONDS": str(WINDOW),
        "HEREWITH_LOG_LEVEL": "warning",
    }
    servers = [ProcessServer(env, log_path=tmp_path / f"server{i}.log") for i in range(2)]
    for s in servers:  # one after the other: the first applies the migrations
        s.start()
    warm = await create_org_key(settings, "Warm-up")  # its own budget: warming up costs the test's org nothing
    async with httpx.AsyncClient(headers=warm.headers, timeout=30) as c:
        for s in servers:
            for _ in range(3):
                assert (await c.get(s.base_url + "/v1/meetings")).status_code == 200
    try:
        admitted: list[Admitted] = []
        statuses: dict[int, int] = {}
        served_by = [0, 0]
        start = time.monotonic()
        stop_at = start + WINDOWS * WINDOW + 2.0

        async def client(n: int) -> None:
            methods = itertools.cycle(["GET", "GET", "DELETE", "POST", "GET", "DELETE", "GET"][n % 3:] + ["GET"] * (n % 3))
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {keys[n % 2]}"}, timeout=10) as c:
                i = 0
                while time.monotonic() < stop_at:
                    srv = (n + i) % 2
                    i += 1
                    base = servers[srv].base_url + "/v1/meetings"
                    method = next(methods)
                    sent = time.monotonic()
                    if method == "GET":
                        r = await c.get(base)
                    elif method == "DELETE":
                        r = await c.delete(f"{base}/{uuid.uuid4()}")
                    else:
                        r = await c.post(base, json=END)
                    received = time.monotonic()
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    if r.status_code == 429:
                        assert r.headers["X-RateLimit-Limit"] == str(BUDGET)
                        assert int(r.headers["Retry-After"]) >= 1 and r.json()["data"]["msLeft"] > 0
                        await asyncio.sleep(0.002)
                        continue
                    assert r.status_code in (200, 201, 204), r.text
                    assert r.headers["X-RateLimit-Limit"] == str(BUDGET)
                    served_by[srv] += 1
                    admitted.append(Admitted(sent, received, cost_of(method)))

        await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    finally:
        for s in servers:
            s.stop()

    assert statuses.get(429, 0) > 0, statuses
    assert all(served_by), served_by  # both processes admitted requests
    admitted.sort(key=lambda a: a.sent)
    # Upper bound: no window holds more than the budget.
    worst = 0
    for first in admitted:
        a = first.sent
        pts = sum(x.points for x in admitted if x.sent >= a and x.received < a + WINDOW)
        worst = max(worst, pts)
    assert worst <= BUDGET, f"a {WINDOW}s window admitted {worst} points > {BUDGET}"
    # Lower bound: every full window admitted nearly the whole budget (windows from the first admission).
    start = admitted[0].sent
    per_window = []
    for k in range(WINDOWS):
        a, b = start + k * WINDOW, start + (k + 1) * WINDOW
        per_window.append(sum(x.points for x in admitted if x.sent < b and x.received >= a))
    assert all(p >= 0.9 * BUDGET for p in per_window), (per_window, statuses)
    total = sum(x.points for x in admitted)
    print(f"\nadmitted points per {WINDOW}s window: {per_window}; total {total}; worst window {worst}; "
          f"statuses {statuses}; admitted by process {served_by}")
