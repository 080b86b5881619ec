"""The four ``/v1/insights`` calls: every filter, sort and page boundary; minutes from real times; isolation."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema
import pytest

from herewith.kit.time import format_utc
from tests.webhooks.helpers import Room, person

GRACE = 60


@dataclass
class Dataset:
    rooms: dict[str, dict[str, Any]] = field(default_factory=dict)  # prefix -> meeting
    created: dict[str, str] = field(default_factory=dict)  # prefix -> createdAt
    sessions: dict[str, list[str]] = field(default_factory=dict)  # prefix -> session ids (from webhooks-free insights)
    people: dict[str, Any] = field(default_factory=dict)
    other_room: dict[str, Any] | None = None


async def _meeting(client, prefix: str) -> dict[str, Any]:
    r = await client.post("/meetings", json={"endDate": "2099-02-18T14:23:00.000Z", "roomNamePrefix": prefix})
    assert r.status_code == 201, r.text
    return r.json()


def _session(server, room: Room, people: list, stay: float, stats: bool = False) -> None:
    """Everyone joins 5 s apart, stays ``stay`` s, leaves 5 s apart; then the grace period passes."""
    for p in people:
        room.join(p)
        server.clock.advance(5)
        if stats:
            room.stats(p, packetLossSend=0.5, packetLossRecv=1.5, bitrateSend=800_000, bitrateRecv=750_000,
                       sampleRateMs=5000)
    server.clock.advance(stay)
    for p in people:
        room.leave(p)
        server.clock.advance(5)
    server.clock.advance(GRACE + 1)


async def _wait_sessions_ended(client, room_name: str, n: int) -> list[dict]:
    for _ in range(200):
        r = await client.get("/insights/room-sessions", params={"roomName": room_name, "limit": 100})
        results = r.json()["results"]
        if len(results) == n and all(s["endedAt"] for s in results):
            return results
        await asyncio.sleep(0.05)
    raise AssertionError(f"sessions of {room_name} did not end: {results}")


@pytest.fixture
async def data(client, server, org, other_org) -> Dataset:
    d = Dataset()
    # alpha: one session, Ann (host) and Bob, ~150 s each -> 3 + 3 minutes, with stats samples.
    d.rooms["alpha"] = m = await _meeting(client, "alpha")
    d.created["alpha"] = m["startDate"]
    ann = person("Ann", "host", external_id="ext-ann", device_id="dev-ann", user_agent="UA-Ann", metadata="x")
    bob = person("Bob", "visitor", external_id="ext-bob", device_id="dev-bob", user_agent="UA-Bob")
    d.people.update(ann=ann, bob=bob)
    _session(server, Room(server, m, org.organization_id), [ann, bob], 140, stats=True)
    server.clock.advance(3600)
    # alphabet: two sessions; Ann twice (same device), Cid, Dan -> 3 unique participants.
    d.rooms["alphabet"] = m = await _meeting(client, "alphabet")
    d.created["alphabet"] = m["startDate"]
    room = Room(server, m, org.organization_id)
    ann2 = person("Ann", "host", external_id="ext-ann", device_id="dev-ann")
    cid, dan = person("Cid", external_id="ext-cid"), person("Dan", external_id="ext-dan")
    _session(server, room, [ann2, cid], 20)     # 25 s + 20 s -> 1 + 1 minutes
    ann3 = person("Ann", "host", external_id="ext-ann", device_id="dev-ann")
    _session(server, room, [ann3, cid, dan], 300)  # ~315 s, 310 s, 305 s -> 6 + 6 + 6
    d.people.update(ann2=ann2, ann3=ann3, cid=cid, dan=dan)
    server.clock.advance(3600)
    # beta: a recorder and a streamer with two people.
    d.rooms["beta"] = m = await _meeting(client, "beta")
    d.created["beta"] = m["startDate"]
    eve, rec, stream = person("Eve"), person("rec", "recorder"), person("str", "streamer")
    fay = person("Fay")
    _session(server, Room(server, m, org.organization_id), [eve, fay, rec, stream], 95)
    server.clock.advance(3600)
    # gamma: only one person ever -> no session -> not in /insights/rooms.
    d.rooms["gamma"] = m = await _meeting(client, "gamma")
    room = Room(server, m, org.organization_id)
    solo = room.join(person("Solo"))
    server.clock.advance(100)
    room.leave(solo)
    # Another organization's room named alike, with a session.
    async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=other_org.headers) as other:
        d.other_room = await _meeting(other, "alpha")
        _session(server, Room(server, d.other_room, other_org.organization_id),
                 [person("Zed", external_id="ext-ann"), person("Yan")], 30)
        await _wait_sessions_ended(other, d.other_room["roomName"], 1)
    for prefix, n in (("alpha", 1), ("alphabet", 2), ("beta", 1)):
        d.sessions[prefix] = [s["roomSessionId"] for s in
                              await _wait_sessions_ended(client, d.rooms[prefix]["roomName"], n)]
    return d


def _spec_schema(path: str) -> dict:
    import json
    from pathlib import Path

    spec = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "whereby-openapi.json").read_text())
    return spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]


def _nullable(schema: Any) -> Any:
    """The spec types most fields as plain strings; Herewith sends null where there is no value."""
    if isinstance(schema, dict):
        out = {k: _nullable(v) for k, v in schema.items()}
        if out.get("type") == "string":
            out["type"] = ["string", "null"]
        return out
    if isinstance(schema, list):
        return [_nullable(x) for x in schema]
    return schema


async def _all(client, path: str, params: dict, limit: int) -> tuple[list[dict], int]:
    """Walk every page; returns the rows and the number of pages."""
    rows, cursor, pages = [], None, 0
    while True:
        r = await client.get(path, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        assert len(body["results"]) <= limit
        rows += body["results"]
        cursor = body["cursor"]
        if cursor is None:
            return rows, pages


async def test_rooms_totals_and_schema(client, data):
    r = await client.get("/insights/rooms")
    assert r.status_code == 200
    body = r.json()
    jsonschema.validate(body, _nullable(_spec_schema("/insights/rooms")))
    by_name = {x["roomName"]: x for x in body["results"]}
    assert set(by_name) == {data.rooms[p]["roomName"] for p in ("alpha", "alphabet", "beta")}
    alpha = by_name[data.rooms["alpha"]["roomName"]]
    assert alpha == {
        "roomName": data.rooms["alpha"]["roomName"], "createdAt": data.created["alpha"],
        "endAt": "2099-02-18T14:23:00.000Z", "firstSessionStartedAt": alpha["firstSessionStartedAt"],
        "lastSessionStartedAt": alpha["firstSessionStartedAt"], "totalParticipantMinutes": 6,
        "totalRecorderMinutes": 0, "totalStreamerMinutes": 0, "totalUniqueParticipants": 2,
        "totalUniqueRecorders": 0, "totalUniqueStreamers": 0, "totalSessions": 1, "rating": None,
        "totalRatings": None,
    }
    alphabet = by_name[data.rooms["alphabet"]["roomName"]]
    assert alphabet["totalSessions"] == 2 and alphabet["totalUniqueParticipants"] == 3
    assert alphabet["totalParticipantMinutes"] == 1 + 1 + 6 + 6 + 6
    assert alphabet["firstSessionStartedAt"] < alphabet["lastSessionStartedAt"]
    beta = by_name[data.rooms["beta"]["roomName"]]
    assert (beta["totalUniqueParticipants"], beta["totalUniqueRecorders"], beta["totalUniqueStreamers"]) == (2, 1, 1)
    assert beta["totalRecorderMinutes"] == 2 and beta["totalStreamerMinutes"] == 2  # 115 s each
    assert beta["totalParticipantMinutes"] == 2 + 2


FILTER_CASES = [
    ({}, {"alpha", "alphabet", "beta"}),
    ({"roomName[exact]": "ROOM:alpha"}, {"alpha"}),
    ({"roomName[exact]": "NOSLASH:alpha"}, {"alpha"}),
    ({"roomName[exact]": "/alpha"}, set()),
    ({"roomName[startsWith]": "/alpha"}, {"alpha", "alphabet"}),
    ({"roomName[startsWith]": "alpha"}, {"alpha", "alphabet"}),
    ({"roomName[startsWith]": "/alphab"}, {"alphabet"}),
    ({"roomName[startsWith]": "/zzz"}, set()),
    ({"roomName[contains]": "lpha"}, {"alpha", "alphabet"}),
    ({"roomName[contains]": "bet-"}, {"alphabet"}),
    ({"roomName[contains]": "eta"}, {"beta"}),
    ({"roomName[contains]": "%"}, set()),
    ({"roomName[contains]": "_"}, set()),
    ({"roomName[startsWith]": "/alpha", "roomName[contains]": "bet"}, {"alphabet"}),
    ({"createdAt[from]": "CREATED:alphabet"}, {"alphabet", "beta"}),
    ({"createdAt[to]": "CREATED:alphabet"}, {"alpha", "alphabet"}),
    ({"createdAt[from]": "CREATED:alphabet", "createdAt[to]": "CREATED:alphabet"}, {"alphabet"}),
    ({"createdAt[from]": "CREATED+1ms:alphabet", "createdAt[to]": "CREATED:beta"}, {"beta"}),
    ({"createdAt[from]": "2099-01-01T00:00:00Z"}, set()),
    ({"createdAt[to]": "2000-01-01T00:00:00-05:00"}, set()),
    ({"createdAt[from]": "2000-01-01T00:00:00+02:00", "roomName[startsWith]": "/beta"}, {"beta"}),
]


async def test_rooms_filters(client, data):
    """Every filter and combination (one dataset for all cases; each case named in the failure)."""
    for params, expected in FILTER_CASES:
        await _check_filter(client, data, params, expected)


async def _check_filter(client, data, params, expected):
    from datetime import timedelta

    from herewith.kit.time import parse_datetime

    resolved = {}
    for key, value in params.items():
        if value.startswith("ROOM:"):
            value = data.rooms[value[5:]]["roomName"]
        elif value.startswith("NOSLASH:"):
            value = data.rooms[value[8:]]["roomName"].lstrip("/")
        elif value.startswith("CREATED+1ms:"):
            value = format_utc(parse_datetime(data.created[value[12:]]) + timedelta(milliseconds=1))
        elif value.startswith("CREATED:"):
            value = data.created[value[8:]]
        resolved[key] = value
    r = await client.get("/insights/rooms", params=resolved)
    assert r.status_code == 200, r.text
    names = {x["roomName"] for x in r.json()["results"]}
    assert names == {data.rooms[p]["roomName"] for p in expected}, params
    assert data.other_room["roomName"] not in names


@pytest.mark.parametrize("params, field", [
    ({"createdAt[from]": "yesterday"}, "createdAt[from]"), ({"createdAt[to]": "2025-01-01"}, "createdAt[to]"),
    ({"sortBy": "nope:asc"}, "sortBy"), ({"sortBy": "createdAt:up"}, "sortBy"), ({"limit": "0"}, "limit"),
    ({"limit": "101"}, "limit"), ({"limit": "ten"}, "limit"), ({"cursor": "garbage!"}, "cursor"),
])
async def test_rooms_bad_input_is_400_naming_the_field(client, params, field):
    r = await client.get("/insights/rooms", params=params)
    assert r.status_code == 400 and field in r.json()["data"], r.text


ROOM_SORTS = ["roomName", "createdAt", "endAt", "firstSessionStartedAt", "lastSessionStartedAt",
              "totalParticipantMinutes", "totalRecorderMinutes", "totalStreamerMinutes", "totalUniqueParticipants",
              "totalUniqueRecorders", "totalUniqueStreamers", "totalSessions"]


async def test_rooms_every_sort_and_page_boundary(client, data):
    default = (await client.get("/insights/rooms")).json()["results"]
    assert [x["createdAt"] for x in default] == sorted(x["createdAt"] for x in default)  # createdAt:asc
    for name in ROOM_SORTS:
        for direction in ("asc", "desc"):
            full, pages = await _all(client, "/insights/rooms", {"sortBy": f"{name}:{direction}"}, 100)
            assert pages == 1 and len(full) == 3
            values = [x[name] for x in full]
            assert values == sorted(values, reverse=direction == "desc"), (name, direction, values)
            for limit, n_pages in ((1, 3), (2, 2), (3, 1), (4, 1)):
                paged, pages = await _all(client, "/insights/rooms", {"sortBy": f"{name}:{direction}"}, limit)
                assert paged == full and pages == n_pages, (name, direction, limit)
    # A cursor belongs to its sortBy.
    first = (await client.get("/insights/rooms", params={"limit": 1, "sortBy": "totalSessions:desc"})).json()
    r = await client.get("/insights/rooms", params={"limit": 1, "sortBy": "roomName:asc", "cursor": first["cursor"]})
    assert r.status_code == 400 and "cursor" in r.json()["data"]
    # sortBy without a direction is ascending.
    plain = (await client.get("/insights/rooms", params={"sortBy": "totalSessions"})).json()["results"]
    assert [x["totalSessions"] for x in plain] == [1, 1, 2]


async def test_default_limit_is_ten(client, server, org):
    for i in range(11):
        m = await _meeting(client, f"bulk{i}")
        room = Room(server, m, org.organization_id)
        a, b = room.join(person("A")), room.join(person("B"))
        room.leave(a)
        room.leave(b)
    first = (await client.get("/insights/rooms")).json()
    assert len(first["results"]) == 10 and first["cursor"]
    second = (await client.get("/insights/rooms", params={"cursor": first["cursor"]})).json()
    assert len(second["results"]) == 1 and second["cursor"] is None
    sessions = (await client.get("/insights/room-sessions", params={"roomName": m["roomName"]})).json()
    assert len(sessions["results"]) == 1 and sessions["results"][0]["endedAt"] is None  # in its grace period


async def test_room_sessions(client, server, data, other_org):
    name = data.rooms["alphabet"]["roomName"]
    r = await client.get("/insights/room-sessions", params={"roomName": name})
    body = r.json()
    jsonschema.validate(body, _nullable(_spec_schema("/insights/room-sessions")))
    s1, s2 = body["results"]
    assert [s1["roomSessionId"], s2["roomSessionId"]] == data.sessions["alphabet"]
    assert s1["startedAt"] < s1["endedAt"] < s2["startedAt"] < s2["endedAt"]
    assert s1["createdAt"] == s1["startedAt"] and s1["endAt"] == s1["endedAt"] and s1["roomName"] == name
    assert (s1["totalParticipantMinutes"], s1["totalUniqueParticipants"]) == (2, 2)
    assert (s2["totalParticipantMinutes"], s2["totalUniqueParticipants"]) == (18, 3)
    assert r.json() == (await client.get("/insights/room-sessions", params={"roomName": name.lstrip("/")})).json()
    only = (await client.get("/insights/room-sessions",
                             params={"roomName": name, "roomSessionId": s2["roomSessionId"]})).json()["results"]
    assert [x["roomSessionId"] for x in only] == [s2["roomSessionId"]]
    for field_name in ("startedAt", "endedAt", "createdAt", "endAt", "totalParticipantMinutes",
                       "totalUniqueParticipants", "totalRecorderMinutes", "totalStreamerMinutes",
                       "totalUniqueRecorders", "totalUniqueStreamers"):
        for direction in ("asc", "desc"):
            full, _ = await _all(client, "/insights/room-sessions", {"roomName": name, "sortBy": f"{field_name}:{direction}"}, 100)
            values = [x[field_name] for x in full]
            assert values == sorted(values, reverse=direction == "desc")
            paged, pages = await _all(client, "/insights/room-sessions", {"roomName": name, "sortBy": f"{field_name}:{direction}"}, 1)
            assert paged == full and pages == 2
    desc = (await client.get("/insights/room-sessions", params={"roomName": name, "sortBy": "totalUniqueParticipants:desc"})).json()
    assert desc["results"][0]["roomSessionId"] == s2["roomSessionId"]
    # Bad input, unknown and foreign rooms.
    r = await client.get("/insights/room-sessions")
    assert r.status_code == 400 and "roomName" in r.json()["data"]
    assert (await client.get("/insights/room-sessions", params={"roomName": "/nope"})).status_code == 404
    assert (await client.get("/insights/room-sessions", params={"roomName": data.other_room["roomName"]})).status_code == 404
    r = await client.get("/insights/room-sessions", params={"roomName": name, "sortBy": "joinedAt:asc"})
    assert r.status_code == 400 and "sortBy" in r.json()["data"]


async def test_participants(client, server, data, other_org):
    s_alpha = data.sessions["alpha"][0]
    body = (await client.get("/insights/participants", params={"roomSessionId": s_alpha})).json()
    jsonschema.validate(body, _nullable(_spec_schema("/insights/participants")))
    ann, bob = body["results"]
    assert ann["participantId"] == data.people["ann"].participant_id
    assert ann == {**ann, "roomSessionId": s_alpha, "deviceId": "dev-ann", "userId": None, "roleName": "host",
                   "displayName": "Ann", "externalId": "ext-ann", "rating": None, "tags": None, "comment": None}
    assert ann["joinedAt"] < bob["joinedAt"] < ann["leftAt"] < bob["leftAt"]
    # By externalId: every session the person was in, in this organization only.
    by_ext = (await client.get("/insights/participants", params={"externalId": "ext-ann"})).json()["results"]
    assert [p["participantId"] for p in by_ext] == [data.people[k].participant_id for k in ("ann", "ann2", "ann3")]
    both = (await client.get("/insights/participants",
                             params={"externalId": "ext-ann", "roomSessionId": data.sessions["alphabet"][1]})).json()
    assert [p["participantId"] for p in both["results"]] == [data.people["ann3"].participant_id]
    # Sorts and pages.
    s2 = data.sessions["alphabet"][1]
    for field_name in ("joinedAt", "leftAt"):
        for direction in ("asc", "desc"):
            full, _ = await _all(client, "/insights/participants", {"roomSessionId": s2, "sortBy": f"{field_name}:{direction}"}, 100)
            values = [x[field_name] for x in full]
            assert len(full) == 3 and values == sorted(values, reverse=direction == "desc")
            for limit, n_pages in ((1, 3), (2, 2), (3, 1)):
                paged, pages = await _all(client, "/insights/participants", {"roomSessionId": s2, "sortBy": f"{field_name}:{direction}"}, limit)
                assert paged == full and pages == n_pages
    left_desc = [p["displayName"] for p in (await client.get(
        "/insights/participants", params={"roomSessionId": s2, "sortBy": "leftAt:desc"})).json()["results"]]
    assert left_desc == ["Dan", "Cid", "Ann"]
    # Required filter, bad sort, other organization's session.
    r = await client.get("/insights/participants")
    assert r.status_code == 400 and "roomSessionId" in r.json()["data"]
    r = await client.get("/insights/participants", params={"roomSessionId": s2, "sortBy": "displayName:asc"})
    assert r.status_code == 400 and "sortBy" in r.json()["data"]
    async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=other_org.headers) as other:
        assert (await other.get("/insights/participants", params={"roomSessionId": s2})).json()["results"] == []
        theirs = (await other.get("/insights/participants", params={"externalId": "ext-ann"})).json()["results"]
        assert [p["displayName"] for p in theirs] == ["Zed"]
        assert [x["roomName"] for x in (await other.get("/insights/rooms")).json()["results"]] == [data.other_room["roomName"]]
        r = await other.get("/insights/participant", params={"roomSessionId": s_alpha,
                                                              "participantId": data.people["ann"].participant_id})
        assert r.status_code == 404


async def test_participant_detail_has_the_real_samples(client, data):
    s_alpha = data.sessions["alpha"][0]
    ann = data.people["ann"]
    r = await client.get("/insights/participant", params={"roomSessionId": s_alpha, "participantId": ann.participant_id})
    assert r.status_code == 200, r.text
    body = r.json()
    jsonschema.validate(body, _nullable(_spec_schema("/insights/participant")))
    (detail,) = body
    assert detail["displayName"] == "Ann" and detail["userRole"] == "host" and detail["userAgent"] == "UA-Ann"
    assert detail["sampleRateMs"] == 5000
    assert [x["value"] for x in detail["samples"]["packetLossSend"]] == [0.5]
    assert [x["value"] for x in detail["samples"]["packetLossRecv"]] == [1.5]
    assert [x["value"] for x in detail["samples"]["bitrateSend"]] == [800_000]
    assert [x["value"] for x in detail["samples"]["bitrateRecv"]] == [750_000]
    parts = (await client.get("/insights/participants", params={"roomSessionId": s_alpha})).json()["results"]
    assert detail["timeStamp"] == parts[0]["joinedAt"]
    assert [e["type"] for e in detail["events"]] == ["joined", "left"]
    for params, field_name in (({"roomSessionId": s_alpha}, "participantId"), ({"participantId": "x"}, "roomSessionId")):
        r = await client.get("/insights/participant", params=params)
        assert r.status_code == 400 and field_name in r.json()["data"]
    r = await client.get("/insights/participant", params={"roomSessionId": s_alpha, "participantId": "nobody"})
    assert r.status_code == 404
