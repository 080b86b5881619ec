"""The four meetings calls against a real server, on SQLite and PostgreSQL (CONTRACT.md, "Meetings")."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from herewith.auth.room_keys import verify_room_key
from tests.support.contract import component_schema, response_schema, validate

FUTURE = "2099-02-18T14:23:00.000Z"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
MEETING = component_schema("Meeting")


async def create(client: httpx.AsyncClient, **body) -> httpx.Response:
    body.setdefault("endDate", FUTURE)
    return await client.post("/meetings", json=body)


async def test_create_minimal_matches_contract(client, server):
    before = datetime.now(timezone.utc)
    r = await create(client)
    assert r.status_code == 201
    m = r.json()
    validate(m, response_schema("/meetings", "post", "201"))
    assert set(m) == {"meetingId", "roomName", "roomUrl", "startDate", "endDate"}
    assert re.fullmatch("/" + UUID, m["roomName"])
    assert m["roomUrl"] == server.base_url + m["roomName"]
    assert m["endDate"] == FUTURE
    start = datetime.fromisoformat(m["startDate"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= start <= datetime.now(timezone.utc) + timedelta(seconds=1)


async def test_timezone_offset_is_converted_to_utc(client):
    r = await create(client, endDate="2099-08-11T07:56:01-05:00")
    assert r.status_code == 201
    assert r.json()["endDate"] == "2099-08-11T12:56:01.000Z"
    r = await create(client, endDate="2099-08-11T07:56:01.5+02:00")
    assert r.json()["endDate"] == "2099-08-11T05:56:01.500Z"
    r = await create(client, endDate="2099-08-11T07:56:01")  # no offset: UTC
    assert r.json()["endDate"] == "2099-08-11T07:56:01.000Z"


async def test_start_date_is_accepted_and_ignored(client):
    r = await create(client, startDate="2098-01-01T00:00:00Z")
    assert r.status_code == 201
    assert not r.json()["startDate"].startswith("2098")


async def test_host_and_viewer_urls_carry_signed_role_keys(client, server):
    r = await create(client, fields=["hostRoomUrl", "viewerRoomUrl"])
    m = r.json()
    validate(m, MEETING)
    now = datetime.now(timezone.utc)
    for field, role in (("hostRoomUrl", "host"), ("viewerRoomUrl", "viewer")):
        base, _, query = m[field].partition("?roomKey=")
        assert base == m["roomUrl"]
        claims = verify_room_key(server.settings.signing_key, query, m["roomName"], now)
        assert claims.role == role
        # valid until endDate + 1 hour
        assert claims.expires_at == int(datetime(2099, 2, 18, 15, 23, tzinfo=timezone.utc).timestamp())


async def test_room_name_prefix_is_normalised(client):
    r = await create(client, roomNamePrefix="My Team  Room-1")
    assert r.status_code == 201
    assert re.fullmatch("/myteamroom-1-" + UUID, r.json()["roomName"])
    r = await create(client, roomNamePrefix=None)
    assert re.fullmatch("/" + UUID, r.json()["roomName"])
    r = await create(client, roomNamePrefix="a" * 39)
    assert r.status_code == 201


async def test_human_short_pattern(client):
    names = set()
    for _ in range(5):
        r = await create(client, roomNamePattern="human-short", roomNamePrefix="support")
        assert r.status_code == 201
        name = r.json()["roomName"]
        assert re.fullmatch(r"/support-[abcdefghjkmnpqrstuvwxyz23456789]{6}", name), name
        names.add(name)
    assert len(names) == 5


async def test_human_short_collisions_draw_a_new_name_then_409(client, monkeypatch):
    """A taken human-short name is retried with a new one (each INSERT in a SAVEPOINT, so the request's
    transaction survives the failed one); after MAX_NAME_ATTEMPTS taken names, a 409 and nothing stored."""
    from herewith.meetings import service  # noqa: PLC0415

    taken = (await create(client, roomNamePattern="human-short", roomNamePrefix="dup")).json()["roomName"]
    drawn: list[str] = []

    def names(pattern, prefix):  # noqa: ANN001, ANN202
        drawn.append(taken if len(drawn) < 3 else f"/{prefix}-fresh{len(drawn)}")
        return drawn[-1]

    monkeypatch.setattr(service, "generate_room_name", names)
    r = await create(client, roomNamePattern="human-short", roomNamePrefix="dup")
    assert r.status_code == 201, r.text
    assert r.json()["roomName"] == "/dup-fresh3" and len(drawn) == 4
    assert (await client.get(f"/meetings/{r.json()['meetingId']}")).status_code == 200

    monkeypatch.setattr(service, "generate_room_name", lambda pattern, prefix: taken)
    r = await create(client, roomNamePattern="human-short", roomNamePrefix="dup")
    assert r.status_code == 409 and r.json() == {"error": "Could not allocate a unique room name"}
    listed = (await client.get("/meetings", params={"roomName[startsWith]": "/dup"})).json()["results"]
    assert sorted(m["roomName"] for m in listed) == sorted([taken, "/dup-fresh3"])


async def test_viewer_mode_template(client, server):
    r = await create(client, templateType="viewerMode")
    assert r.status_code == 201
    m = r.json()
    assert "hostRoomUrl" in m and "viewerRoomUrl" in m
    from herewith.meetings.models import Meeting  # noqa: PLC0415
    from sqlalchemy import select  # noqa: PLC0415

    async def load():
        async with server.services.sessionmaker() as s:
            return await s.scalar(select(Meeting).where(Meeting.id == m["meetingId"]))

    row = server.run_coro(load())
    assert (row.is_locked, row.room_mode) == (True, "group")


async def test_options_are_stored(client, server):
    body = {
        "isLocked": True,
        "roomMode": "group",
        "recording": {"type": "cloud", "startTrigger": "automatic-2nd-participant",
                      "destination": {"provider": "s3", "bucket": "b/rec", "accessKeyId": "AK", "accessKeySecret": "S",
                                      "fileFormat": "mp4"}},
        "liveTranscription": {"destination": None, "startTrigger": "manual", "language": "en-GB,", "liveCaptions": True},
        "streaming": {"destination": {"url": "rtmp://live.example/app/key"}, "startTrigger": "prompt"},
    }
    r = await create(client, **body)
    assert r.status_code == 201, r.text
    from herewith.meetings.models import Meeting  # noqa: PLC0415
    from sqlalchemy import select  # noqa: PLC0415

    async def load():
        async with server.services.sessionmaker() as s:
            return await s.scalar(select(Meeting).where(Meeting.id == r.json()["meetingId"]))

    row = server.run_coro(load())
    assert row.is_locked and row.room_mode == "group"
    assert row.recording["destination"]["bucket"] == "b/rec"
    assert row.recording["startTrigger"] == "automatic-2nd-participant"
    assert row.live_transcription["language"] == "en-GB"
    assert row.streaming["destination"]["url"] == "rtmp://live.example/app/key"


BAD_BODIES = [
    ({}, "endDate"),
    ({"endDate": "2000-01-01T00:00:00Z"}, "endDate"),
    ({"endDate": "tomorrow"}, "endDate"),
    ({"endDate": 4102444800}, "endDate"),
    ({"endDate": "2099-02-18"}, "endDate"),
    ({"endDate": FUTURE, "isLocked": "yes"}, "isLocked"),
    ({"endDate": FUTURE, "roomMode": "huge"}, "roomMode"),
    ({"endDate": FUTURE, "roomNamePrefix": "a" * 40}, "roomNamePrefix"),
    ({"endDate": FUTURE, "roomNamePrefix": "under_score"}, "roomNamePrefix"),
    ({"endDate": FUTURE, "roomNamePrefix": "ümlaut"}, "roomNamePrefix"),
    ({"endDate": FUTURE, "roomNamePrefix": 12}, "roomNamePrefix"),
    ({"endDate": FUTURE, "roomNamePattern": "words"}, "roomNamePattern"),
    ({"endDate": FUTURE, "templateType": "webinar"}, "templateType"),
    ({"endDate": FUTURE, "fields": ["secret"]}, "fields.0"),
    ({"endDate": FUTURE, "fields": "hostRoomUrl"}, "fields"),
    ({"endDate": FUTURE, "recording": {"type": "vhs", "destination": None, "startTrigger": None}}, "recording.type"),
    ({"endDate": FUTURE, "recording": {"type": "cloud", "startTrigger": "none"}}, "recording.destination"),
    ({"endDate": FUTURE, "recording": {"type": "cloud", "destination": {"provider": "s3"}, "startTrigger": "none"}},
     "recording.destination"),
    ({"endDate": FUTURE, "recording": {"type": "cloud", "destination": {"provider": "ftp"}, "startTrigger": "none"}},
     "recording.destination.provider"),
    ({"endDate": FUTURE, "recording": {"type": "cloud", "destination": None, "startTrigger": "later"}},
     "recording.startTrigger"),
    ({"endDate": FUTURE, "liveTranscription": {"destination": None, "startTrigger": "manual", "language": "xx"}},
     "liveTranscription.language"),
    ({"endDate": FUTURE, "liveTranscription": {"destination": None, "startTrigger": "prompt"}},
     "liveTranscription.startTrigger"),
    ({"endDate": FUTURE, "streaming": {"destination": {"url": "http://x/y"}, "startTrigger": "none"}},
     "streaming.destination.url"),
    ({"endDate": FUTURE, "streaming": {"startTrigger": "none"}}, "streaming.destination"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES, ids=[f for _, f in BAD_BODIES])
async def test_bad_input_names_the_field(client, body, field):
    r = await client.post("/meetings", json=body)
    assert r.status_code == 400, r.text
    err = r.json()
    assert isinstance(err["error"], str) and field in err["error"]
    assert field in err["data"]


async def test_body_that_is_not_an_object(client):
    for content in ("[1, 2]", '"text"', "null"):
        r = await client.post("/meetings", content=content, headers={"Content-Type": "application/json"})
        assert r.status_code == 400
        assert "error" in r.json()
        assert r.json() == {"error": "Invalid body: must be a JSON object", "data": {"body": "must be a JSON object"}}


async def test_body_that_is_not_json(client):
    r = await client.post("/meetings", content=f"endDate={FUTURE}",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400
    assert r.json() == {"error": "Invalid body: must be JSON (Content-Type: application/json)",
                        "data": {"body": "must be JSON (Content-Type: application/json)"}}
    r = await client.post("/meetings", content=b"", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "Malformed JSON body"
    # no Content-Type at all is read as JSON (as FastAPI's body parameters do)
    r = await client.post("/meetings", content=f'{{"endDate": "{FUTURE}"}}')
    assert r.status_code == 201, r.text


async def test_malformed_json(client):
    r = await client.post("/meetings", content='{"endDate": ', headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json() == {"error": "Malformed JSON body", "data": {"body": "not valid JSON"}}


async def test_body_too_large(client):
    big = '{"endDate": "' + FUTURE + '", "pad": "' + "x" * (6 * 1024 * 1024) + '"}'
    r = await client.post("/meetings", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"] == "Request body is too large"

    async def chunks():
        yield b'{"endDate": "2099-01-01T00:00:00Z", "pad": "'
        for _ in range(7):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    r = await client.post("/meetings", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


async def test_unknown_id_wrong_method_and_route(client):
    r = await client.get("/meetings/does-not-exist")
    assert r.status_code == 404
    assert r.json() == {"error": "The requested resource doesn't exist"}
    r = await client.patch("/meetings")
    assert r.status_code == 405
    assert r.json()["error"] == "Method not allowed"
    r = await client.get("/nothing-here")
    assert r.status_code == 404


async def test_auth_required(server, client):
    async with httpx.AsyncClient(base_url=server.base_url + "/v1") as anon:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}):
            r = await anon.get("/meetings", headers=headers)
            assert r.status_code == 401
            assert r.json() == {"error": "Access token is missing or invalid"}
        r = await anon.post("/meetings", json={"endDate": FUTURE})
        assert r.status_code == 401


async def test_get_with_fields(client):
    m = (await create(client)).json()
    r = await client.get(f"/meetings/{m['meetingId']}", params={"fields": "hostRoomUrl,viewerRoomUrl"})
    assert r.status_code == 200
    got = r.json()
    validate(got, MEETING)
    assert got["hostRoomUrl"].startswith(m["roomUrl"] + "?roomKey=")
    assert got["viewerRoomUrl"].startswith(m["roomUrl"] + "?roomKey=")
    r = await client.get(f"/meetings/{m['meetingId']}")
    assert r.json() == m
    r = await client.get(f"/meetings/{m['meetingId']}", params={"fields": "bogus"})
    assert r.status_code == 400 and "fields" in r.json()["data"]


async def test_list_pages_and_schema(client):
    created = [(await create(client, roomNamePrefix=f"p{i}")).json()["meetingId"] for i in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, "fields": "hostRoomUrl"}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/meetings", params=params)
        assert r.status_code == 200
        body = r.json()
        validate(body, response_schema("/meetings", "get"))
        assert all("hostRoomUrl" in m for m in body["results"])
        seen += [m["meetingId"] for m in body["results"]]
        pages += 1
        cursor = body["cursor"]
        if cursor is None:
            break
    assert seen == created and pages == 3
    default = (await client.get("/meetings")).json()
    assert len(default["results"]) == 7 and default["cursor"] is None


async def test_list_exact_page_boundary(client):
    for _ in range(4):
        await create(client)
    first = (await client.get("/meetings", params={"limit": 2})).json()
    second = (await client.get("/meetings", params={"limit": 2, "cursor": first["cursor"]})).json()
    assert len(second["results"]) == 2
    assert second["cursor"] is None


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5"])
async def test_list_bad_limit(client, limit):
    r = await client.get("/meetings", params={"limit": limit})
    assert r.status_code == 400 and "limit" in r.json()["data"]


@pytest.mark.parametrize("cursor", ["garbage!", "eyJ4IjoxfQ", "bnVsbA"])
async def test_list_bad_cursor(client, cursor):
    r = await client.get("/meetings", params={"cursor": cursor})
    assert r.status_code == 400 and "cursor" in r.json()["data"]


async def test_list_room_name_starts_with(client):
    a = (await create(client, roomNamePrefix="sales")).json()
    await create(client, roomNamePrefix="support")
    await create(client)
    for value in ("/sales", "sales"):
        r = await client.get("/meetings", params={"roomName[startsWith]": value})
        assert [m["meetingId"] for m in r.json()["results"]] == [a["meetingId"]]
    r = await client.get("/meetings", params={"roomName[startsWith]": "/s%"})
    assert r.json()["results"] == []


async def test_pagination_while_meetings_are_created(client):
    for _ in range(10):
        await create(client)
    stop = asyncio.Event()
    created_during: list[str] = []

    async def writer():
        while not stop.is_set():
            created_during.append((await create(client)).json()["meetingId"])

    task = asyncio.create_task(writer())
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        body = (await client.get("/meetings", params=params)).json()
        seen += [m["meetingId"] for m in body["results"]]
        cursor = body["cursor"]
        await asyncio.sleep(0.01)
        if cursor is None or len(seen) > 60:
            break
    stop.set()
    await task
    assert len(seen) == len(set(seen)), "a meeting appeared on two pages"
    everything = []
    cursor = None
    while True:
        body = (await client.get("/meetings", params={"limit": 100} | ({"cursor": cursor} if cursor else {}))).json()
        everything += [m["meetingId"] for m in body["results"]]
        if not (cursor := body["cursor"]):
            break
    # what was paged is a prefix of the full ordered list: nothing skipped, nothing repeated
    assert everything[: len(seen)] == seen
    assert len(everything) == 10 + len(created_during)


async def test_delete_is_idempotent(client):
    m = (await create(client)).json()
    for _ in range(2):
        r = await client.delete(f"/meetings/{m['meetingId']}")
        assert r.status_code == 204 and r.content == b""
    assert (await client.get(f"/meetings/{m['meetingId']}")).status_code == 404
    assert (await client.delete("/meetings/never-existed")).status_code == 204
    assert m["meetingId"] not in [x["meetingId"] for x in (await client.get("/meetings")).json()["results"]]


async def test_organizations_are_isolated(server, client, other_org):
    m = (await create(client)).json()
    async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=other_org.headers) as other:
        assert (await other.get(f"/meetings/{m['meetingId']}")).status_code == 404
        assert (await other.get("/meetings")).json() == {"results": [], "cursor": None}
        assert (await other.delete(f"/meetings/{m['meetingId']}")).status_code == 204
        theirs = (await other.post("/meetings", json={"endDate": FUTURE})).json()
    assert (await client.get(f"/meetings/{m['meetingId']}")).status_code == 200
    assert (await client.get(f"/meetings/{theirs['meetingId']}")).status_code == 404
    assert [x["meetingId"] for x in (await client.get("/meetings")).json()["results"]] == [m["meetingId"]]


async def test_revoked_key_is_refused_at_once(server, client, org):
    """Every call after the revocation is a 401 (POST /meetings and GET /meetings/{id} were answered just
    before), a bad body's 400 included, and a refused POST creates nothing."""
    from herewith.auth import service as auth_service  # noqa: PLC0415

    assert (await client.get("/meetings")).status_code == 200
    _, second_key = await _add_key(server, org.organization_id)
    async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers={"Authorization": f"Bearer {second_key}"}) as c2:
        assert (await c2.get("/meetings")).status_code == 200
        made = (await c2.post("/meetings", json={"endDate": FUTURE})).json()
        assert (await c2.get(f"/meetings/{made['meetingId']}")).status_code == 200

        async def revoke():
            async with server.services.sessionmaker() as s:
                keys = await auth_service.list_api_keys(s, org.organization_id)
                target = next(k for k in keys if second_key.startswith(k.prefix))
                await auth_service.revoke_api_key(s, target.id)
                await s.commit()

        server.run_coro(revoke())
        refused = [
            await c2.post("/meetings", json={"endDate": FUTURE}),
            await c2.post("/meetings", json={"endDate": "yesterday"}),  # a 401, not the 400 it would be
            await c2.get(f"/meetings/{made['meetingId']}"),
            await c2.get("/meetings/no-such-meeting"),
            await c2.get("/meetings"),
            await c2.delete(f"/meetings/{made['meetingId']}"),
        ]
        for r in refused:
            assert (r.status_code, r.json()) == (401, {"error": "Access token is missing or invalid"}), r.request
    assert (await client.get("/meetings")).status_code == 200  # the org's other key still works
    listed = (await client.get("/meetings")).json()["results"]
    assert [m["meetingId"] for m in listed] == [made["meetingId"]]  # the refused POST stored nothing


async def _add_key(server, organization_id):
    from herewith.auth import service as auth_service  # noqa: PLC0415

    async def go():
        async with server.services.sessionmaker() as s:
            result = await auth_service.create_api_key(s, organization_id, "second")
            await s.commit()
            return result

    return server.run_coro(go())


async def test_openapi_document_and_health(server):
    async with httpx.AsyncClient(base_url=server.base_url) as c:
        doc = (await c.get("/v1/openapi.json")).json()
        assert "/v1/meetings" in doc["paths"] and "/v1/meetings/{meetingId}" in doc["paths"]
        # POST's body is described by its model, and every $ref in the document (the theming bodies' too)
        # resolves to a schema of components.schemas
        body = doc["paths"]["/v1/meetings"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/CreateMeetingRequest"}
        schemas = doc["components"]["schemas"]
        assert "endDate" in schemas["CreateMeetingRequest"]["required"]

        def refs(node):
            if isinstance(node, dict):
                yield from ([node["$ref"]] if "$ref" in node else [])
                for value in node.values():
                    yield from refs(value)
            elif isinstance(node, list):
                for value in node:
                    yield from refs(value)
        dangling = {r for r in refs(doc) if r.removeprefix("#/components/schemas/") not in schemas}
        assert not dangling, dangling
        assert (await c.get("/v1/docs")).status_code == 200
        assert (await c.get("/healthz")).json()["status"] == "ok"
