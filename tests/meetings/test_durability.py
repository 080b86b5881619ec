"""What the API acknowledged survives ``kill -9`` of the server (issue 2, "Done when").

Every wait has a deadline (server start, each HTTP call, the writers after the kill, the listing), so a stuck
server fails this test with a message instead of hanging the session; the child server is stopped in any case.
"""

from __future__ import annotations

import asyncio

import httpx

from tests.support.servers import ProcessServer, create_org_key, run_sync

LOAD_SECONDS = 2.0
WRITERS_GONE_WITHIN = 20.0  # after the kill, every writer must have seen its connection fail within this
STEP_TIMEOUT = 60.0  # each run_sync step below


def test_meetings_survive_kill_9(tmp_path, settings):
    # Rate limits are not what this test is about: the load would exhaust the default budget.
    env = {"HEREWITH_DATA_DIR": str(settings.data_dir), "HEREWITH_SECRET_KEY": "k" * 32,
           "HEREWITH_RATELIMIT_ENABLED": "false"}
    if settings.database_url:
        env["HEREWITH_DATABASE_URL"] = settings.database_url
    srv = ProcessServer(env, log_path=tmp_path / "server.log")
    acknowledged: list[str] = []
    statuses: list[int] = []

    async def load() -> None:
        async with httpx.AsyncClient(base_url=srv.base_url + "/v1", headers=org.headers, timeout=10) as c:
            async def one_writer() -> None:
                while True:
                    try:
                        r = await c.post("/meetings", json={"endDate": "2099-01-01T00:00:00Z"})
                    except httpx.HTTPError:
                        return  # the server died under us: this request was not acknowledged
                    statuses.append(r.status_code)
                    if r.status_code == 201:
                        acknowledged.append(r.json()["meetingId"])

            tasks = [asyncio.create_task(one_writer()) for _ in range(8)]
            await asyncio.sleep(LOAD_SECONDS)
            srv.kill9()  # in the middle of the load
            try:
                await asyncio.wait_for(asyncio.gather(*tasks), WRITERS_GONE_WITHIN)
            except TimeoutError:
                raise AssertionError(
                    f"{srv.base_url} still answered {WRITERS_GONE_WITHIN}s after kill -9 of the server "
                    f"(another process on the port?); statuses seen: {sorted(set(statuses))}") from None

    async def listed() -> set[str]:
        ids: set[str] = set()
        cursor = None
        async with httpx.AsyncClient(base_url=srv.base_url + "/v1", headers=org.headers, timeout=10) as c:
            for _ in range(len(acknowledged) // 100 + 20):  # more pages than there can be
                params = {"limit": 100} | ({"cursor": cursor} if cursor else {})
                r = await c.get("/meetings", params=params)
                assert r.status_code == 200, r.text
                body = r.json()
                ids |= {m["meetingId"] for m in body["results"]}
                if not (cursor := body["cursor"]):
                    return ids
        raise AssertionError(f"GET /v1/meetings kept returning a cursor: {len(ids)} meetings in the pages seen")

    try:
        srv.start()
        org = run_sync(create_org_key(settings), timeout=STEP_TIMEOUT)
        run_sync(load(), timeout=STEP_TIMEOUT)
        assert len(acknowledged) > 20, f"statuses seen: {sorted(set(statuses))}"
        srv.start()
        missing = set(acknowledged) - run_sync(listed(), timeout=STEP_TIMEOUT)
        assert not missing, f"{len(missing)} acknowledged meetings lost"
    finally:
        srv.stop()
