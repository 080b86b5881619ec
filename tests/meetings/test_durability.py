"""What the API acknowledged survives ``kill -9`` of the server (issue 2, "Done when")."""

from __future__ import annotations

import asyncio

import httpx

from tests.support.servers import ProcessServer, create_org_key, run_sync


def test_meetings_survive_kill_9(tmp_path, settings):
    # Rate limits are not what this test is about: the load would exhaust the default budget.
    env = {"HEREWITH_DATA_DIR": str(settings.data_dir), "HEREWITH_SECRET_KEY": "k" * 32,
           "HEREWITH_RATELIMIT_ENABLED": "false"}
    if settings.database_url:
        env["HEREWITH_DATABASE_URL"] = settings.database_url
    srv = ProcessServer(env, log_path=tmp_path / "server.log").start()
    org = run_sync(create_org_key(settings))
    acknowledged: list[str] = []
    statuses: list[int] = []

    async def load(stop_after: float) -> None:
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
            await asyncio.sleep(stop_after)
            srv.kill9()  # in the middle of the load
            await asyncio.gather(*tasks)

    run_sync(load(2.0))
    assert len(acknowledged) > 20, f"statuses seen: {sorted(set(statuses))}"
    srv.start()
    try:
        async def listed() -> set[str]:
            ids: set[str] = set()
            cursor = None
            async with httpx.AsyncClient(base_url=srv.base_url + "/v1", headers=org.headers, timeout=10) as c:
                while True:
                    params = {"limit": 100} | ({"cursor": cursor} if cursor else {})
                    body = (await c.get("/meetings", params=params)).json()
                    ids |= {m["meetingId"] for m in body["results"]}
                    if not (cursor := body["cursor"]):
                        return ids

        missing = set(acknowledged) - run_sync(listed())
        assert not missing, f"{len(missing)} acknowledged meetings lost"
    finally:
        srv.stop()
