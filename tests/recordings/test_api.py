"""The five ``/v1/recordings`` calls over HTTP on SQLite and PostgreSQL (CONTRACT.md "Recordings", "Common
rules"): list with roomName, sortBy and cursors; get; idempotent delete and bulk delete (the files go too);
access links with an expiry in epoch milliseconds and HTTP Range downloads; organization isolation; the
contract's error bodies."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from herewith.kit.time import UTC
from tests.recordings.helpers import seed_recording
from tests.support.contract import component_schema, response_schema, validate
from tests.webhooks.helpers import await_for

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
CONTENT = bytes(range(256)) * 40  # 10,240 bytes standing in for a file


def _ids(body: dict) -> list[str]:
    return [r["recordingId"] for r in body["results"]]


async def test_list_sorts_filters_and_pages(server, client, org):
    a = await seed_recording(server, org.organization_id, "/b-room", started=T0, duration_ms=30_000, size_bytes=3_000_000)
    b = await seed_recording(server, org.organization_id, "/a-room", started=T0 + timedelta(hours=1),
                             duration_ms=10_000, size_bytes=9_000_000)
    c = await seed_recording(server, org.organization_id, "/c-room", started=T0 + timedelta(hours=2),
                             duration_ms=20_000, size_bytes=1_000_000)
    running = await seed_recording(server, org.organization_id, "/c-room", started=T0 + timedelta(hours=3),
                                   state="recording")
    assert _ids((await client.get("/recordings")).json()) == [running, c, b, a]  # newest first
    for sort, expected in [("startDate:asc", [a, b, c, running]), ("roomName", [b, a, c, running]),
                           ("roomName:desc", [running, c, a, b]), ("duration:asc", [running, b, c, a]),
                           ("duration:desc", [a, c, b, running]), ("sizeInMegaBytes:desc", [b, a, c, running])]:
        assert _ids((await client.get("/recordings", params={"sortBy": sort})).json()) == expected, sort
        pages, cursor = [], None
        while True:
            params = {"sortBy": sort, "limit": 1, **({"cursor": cursor} if cursor else {})}
            body = (await client.get("/recordings", params=params)).json()
            pages += _ids(body)
            cursor = body["cursor"]
            if cursor is None:
                break
        assert pages == expected, sort
    assert _ids((await client.get("/recordings", params={"roomName": "/c-room"})).json()) == [running, c]
    assert _ids((await client.get("/recordings", params={"roomName": "a-room"})).json()) == [b]
    one = (await client.get("/recordings", params={"sortBy": "roomName", "limit": 2})).json()
    other_sort = await client.get("/recordings", params={"sortBy": "duration", "cursor": one["cursor"]})
    assert other_sort.status_code == 400 and "cursor" in other_sort.json()["data"]

    got = (await client.get(f"/recordings/{a}")).json()
    assert got == {
        "recordingId": a, "roomSessionId": got["roomSessionId"], "roomName": "/b-room",
        "filename": "b-room_2030-01-01T12-00-00Z.mp4", "startDate": "2030-01-01T12:00:00.000Z",
        "endDate": "2030-01-01T12:00:30.000Z", "sizeInMegaBytes": 3.0, "duration": 30.0, "state": "ready",
        "meetingId": got["meetingId"], "storageType": "whereby", "fileFormat": "mp4", "trigger": "manual",
    }
    live = (await client.get(f"/recordings/{running}")).json()
    assert (live["state"], live["endDate"], live["duration"], live["sizeInMegaBytes"]) == ("recording", None, None, 0)


@pytest.mark.parametrize("params,field", [
    ({"sortBy": "size"}, "sortBy"), ({"sortBy": "startDate:up"}, "sortBy"), ({"limit": "0"}, "limit"),
    ({"limit": "101"}, "limit"), ({"cursor": "not-a-cursor!"}, "cursor"),
])
async def test_bad_list_queries_are_400_naming_the_field(client, params, field):
    r = await client.get("/recordings", params=params)
    assert r.status_code == 400 and field in r.json()["data"], r.text


async def test_other_organizations_see_nothing_and_cannot_touch(server, client, org, other_org):
    mine = await seed_recording(server, org.organization_id, content=CONTENT)
    async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=other_org.headers) as other:
        assert (await other.get("/recordings")).json() == {"results": [], "cursor": None}
        for path in (f"/recordings/{mine}", f"/recordings/{mine}/access-link"):
            r = await other.get(path)
            assert r.status_code == 404 and r.json() == {"error": "The requested resource doesn't exist"}
        assert (await other.delete(f"/recordings/{mine}")).status_code == 204
        assert (await other.post("/recordings/bulk-delete", json={"recordingIds": [mine]})).status_code == 204
    assert (await client.get(f"/recordings/{mine}")).json()["state"] == "ready"  # untouched
    async with httpx.AsyncClient(base_url=server.base_url + "/v1") as anonymous:
        r = await anonymous.get("/recordings")
        assert r.status_code == 401 and r.json() == {"error": "Access token is missing or invalid"}


async def test_delete_is_idempotent_and_removes_the_file(server, client, org):
    recording_id = await seed_recording(server, org.organization_id, content=CONTENT)
    directory = server.settings.data_dir / "recordings" / recording_id
    assert directory.is_dir()
    link = (await client.get(f"/recordings/{recording_id}/access-link")).json()
    assert (await client.delete(f"/recordings/{recording_id}")).status_code == 204
    assert (await client.delete(f"/recordings/{recording_id}")).status_code == 204
    assert (await client.get(f"/recordings/{recording_id}")).status_code == 404
    assert (await client.get("/recordings")).json()["results"] == []
    await await_for(lambda: not directory.exists(), timeout=10)
    async with httpx.AsyncClient() as http:
        assert (await http.get(link["accessLink"])).status_code == 404  # the link dies with the recording


async def test_bulk_delete(server, client, org):
    ids = [await seed_recording(server, org.organization_id, f"/room-{i}", content=CONTENT) for i in range(3)]
    r = await client.post("/recordings/bulk-delete", json={"recordingIds": [ids[0], ids[1], "unknown-id", ids[0]]})
    assert r.status_code == 204 and r.content == b""
    assert _ids((await client.get("/recordings")).json()) == [ids[2]]
    assert (await client.post("/recordings/bulk-delete", json={"recordingIds": ids[:2]})).status_code == 204
    for body, field in [({}, "recordingIds"), ({"recordingIds": "x"}, "recordingIds"),
                        ({"recordingIds": [1]}, "recordingIds.0"), ({"recordingIds": ["x"] * 1001}, "recordingIds")]:
        bad = await client.post("/recordings/bulk-delete", json=body)
        assert bad.status_code == 400 and field in bad.json()["data"], (body, bad.text)
    await await_for(lambda: not any((server.settings.data_dir / "recordings" / i).exists() for i in ids[:2]), timeout=10)


async def test_access_link_expires_and_serves_ranges(server, client, org):
    recording_id = await seed_recording(server, org.organization_id, content=CONTENT)
    r = await client.get(f"/recordings/{recording_id}/access-link")
    link = r.json()
    assert set(link) == {"accessLink", "expires"}
    assert abs(link["expires"] - (server.clock.now().timestamp() + 3600) * 1000) < 2000
    assert link["accessLink"].startswith(server.base_url + "/recordings/files/" + recording_id + "/")
    async with httpx.AsyncClient() as http:
        whole = await http.get(link["accessLink"])
        assert whole.status_code == 200 and whole.content == CONTENT
        assert whole.headers["accept-ranges"] == "bytes" and "attachment" in whole.headers["content-disposition"]
        part = await http.get(link["accessLink"], headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == CONTENT[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(CONTENT)}"
        tail = await http.get(link["accessLink"], headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == CONTENT[-10:]
        assert (await http.get(link["accessLink"], headers={"Range": f"bytes={len(CONTENT)}-"})).status_code == 416
        forged = link["accessLink"].rsplit("token=", 1)[0] + "token=" + "x" * 40
        assert (await http.get(forged)).status_code == 403
        other = await seed_recording(server, org.organization_id, content=CONTENT)
        swapped = link["accessLink"].replace(recording_id, other)
        assert (await http.get(swapped)).status_code == 403  # a token is for one recording
        short = (await client.get(f"/recordings/{recording_id}/access-link", params={"validForSeconds": 1})).json()
        assert (await http.get(short["accessLink"])).status_code == 200
        server.clock.advance(5)
        assert (await http.get(short["accessLink"])).status_code == 403
        assert (await http.get(link["accessLink"])).status_code == 200
    for value in ("0", "43201", "abc", "-5"):
        bad = await client.get(f"/recordings/{recording_id}/access-link", params={"validForSeconds": value})
        assert bad.status_code == 400 and "validForSeconds" in bad.json()["data"]
    assert (await client.get(f"/recordings/{recording_id}/access-link", params={"validForSeconds": 43200})).status_code == 200


async def test_access_link_of_an_unfinished_recording_is_409(server, client, org):
    recording_id = await seed_recording(server, org.organization_id, state="processing")
    r = await client.get(f"/recordings/{recording_id}/access-link")
    assert r.status_code == 409 and r.json() == {"error": "The recording is not ready yet", "data": {"state": "processing"}}
    assert (await client.get("/recordings/nope/access-link")).status_code == 404


async def test_responses_match_the_vendor_schemas(server, client, org):
    recording_id = await seed_recording(server, org.organization_id)
    validate((await client.get("/recordings")).json(), response_schema("/recordings", "get"))
    validate((await client.get(f"/recordings/{recording_id}")).json(), component_schema("Recording"))
    validate((await client.get(f"/recordings/{recording_id}/access-link")).json(),
             response_schema("/recordings/{recordingId}/access-link", "get"))
