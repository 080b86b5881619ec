"""The second vendor's room API (seed 004, CONTRACT.md "Another vendor's room options") on SQLite and
PostgreSQL: the seed's curl sample with only host and key changed, every call, its errors in the vendor's
body, one namespace of room names with the Whereby API, and participant tokens the room accepts."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx
import jwt

from herewith.signaling import protocol as p
from tests.metered.conftest import SECRET
from tests.metered.helpers import api, create_room, token, unix
from tests.signaling.helpers import Client

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


async def test_the_seed_curl_sample_works_with_only_host_and_key_changed(server, org) -> None:
    code = (FIXTURES / "seed_clients" / "metered_curl.sh").read_text()
    code = code.replace("https://<appname>.metered.live", server.base_url)
    code = code.replace("{replace_this_with_your_secretKey}", org.api_key)
    run = subprocess.run(["bash", "-c", code], capture_output=True, text=True, timeout=30)
    room = json.loads(run.stdout)
    sample = json.loads((FIXTURES / "metered_room_answer.json").read_text())
    assert set(sample) <= set(room), set(sample) - set(room)
    assert room["roomName"] == "string" and room["app"] == org.organization_id
    assert room["enableChat"] is True and room["recordRoom"] is True and room["joinVideoOn"] is False
    assert "expireUnixSec" not in room and "maxParticipants" not in room  # the sample's zeros mean "not set"
    assert room["created"].endswith("Z") and len(room["created"]) == 24
    # the same room, seen by the first vendor's API and by the room page
    async with httpx.AsyncClient(base_url=server.base_url, headers=org.headers) as c:
        meetings = (await c.get("/v1/meetings")).json()["results"]
        assert [m["roomName"] for m in meetings] == ["/string"]
        assert meetings[0]["meetingId"] == room["_id"]
        page = await c.get("/string")
        assert page.status_code == 200
        config = json.loads(re.search(r'id="herewith-config">(.*?)</script>', page.text, re.S)[1])
        assert config["precall"] == {"video": False, "audio": False, "autoJoin": True, "camera": True}


async def test_calls_and_the_vendors_error_body(server, org, other_org) -> None:
    async with api(server, org) as c:
        generated = await create_room(c, privacy="private", maxParticipants=3, lang="fr")
        name = generated["roomName"]
        assert len(name) == 10 and name.isalnum()
        assert generated["privacy"] == "private" and generated["maxParticipants"] == 3 and generated["lang"] == "fr"
        named = await create_room(c, roomName="team-room_1", enableChat=True)
        assert (await c.get(f"/room/{name}")).json() == generated
        assert [r["roomName"] for r in (await c.get("/rooms")).json()] == [name, "team-room_1"]

        changed = (await c.put("/room/team-room_1", json={"ownerOnlyBroadcast": True, "maxParticipants": 5})).json()
        assert changed["ownerOnlyBroadcast"] is True and changed["maxParticipants"] == 5 and changed["enableChat"] is True
        assert changed["_id"] == named["_id"] and changed["created"] == named["created"]

        errors = [
            (await c.post("/room", json={"roomName": "has space"}), 400),
            (await c.post("/room", json={"roomName": "team-room_1"}), 400),  # taken
            (await c.post("/room", json={"privacy": "secret"}), 400),
            (await c.post("/room", json={"expireUnixSec": unix(-60)}), 400),
            (await c.post("/room", json={"enableRTMPOut": True}), 400),  # rtmpOutURL required
            (await c.post("/room", json={"meetingJoinWebhook": "http://169.254.169.254/hook"}), 400),
            (await c.post("/room", content=b"{not json", headers={"Content-Type": "application/json"}), 400),
            (await c.get("/room/nope"), 404),
            (await c.put("/room/nope", json={}), 404),
            (await c.post("/token", json={"roomName": "nope"}), 404),
            (await c.post("/token", json={}), 400),  # roomName or globalToken
            (await c.get("/rooms", params={"secretKey": "wrong"}), 401),
        ]
        for response, status in errors:
            assert response.status_code == status, response.text
            body = response.json()
            assert body["success"] is False and isinstance(body["message"], str) and body["message"], body
        async with httpx.AsyncClient(base_url=server.base_url + "/api/v1") as anonymous:
            r = await anonymous.get("/rooms")
            assert r.status_code == 401 and r.json() == {"success": False, "message": "Invalid secretKey"}
    async with api(server, other_org) as other:  # another organization sees none of it, and shares the names
        assert (await other.get("/rooms")).json() == []
        assert (await other.get(f"/room/{name}")).status_code == 404
        assert (await other.post("/room", json={"roomName": "team-room_1"})).status_code == 400
    async with api(server, org) as c:
        r = await c.delete(f"/room/{name}")
        assert r.status_code == 200 and r.json()["success"] is True
        assert (await c.get(f"/room/{name}")).status_code == 404
        assert (await c.delete(f"/room/{name}")).status_code == 404
        assert (await httpx.AsyncClient().get(f"{server.base_url}/{name}")).status_code == 410


async def test_a_whereby_meeting_name_is_taken_for_this_api_and_its_rooms_are_listed(server, org, client) -> None:
    meeting = (await client.post("/meetings", json={"endDate": "2099-02-18T14:23:00.000Z"})).json()
    async with api(server, org) as c:
        r = await c.post("/room", json={"roomName": meeting["roomName"].lstrip("/")})
        assert r.status_code == 400 and r.json()["success"] is False
        listed = (await c.get("/rooms")).json()
        assert [x["roomName"] for x in listed] == [meeting["roomName"].lstrip("/")]
        assert listed[0]["privacy"] == "public" and listed[0]["_id"] == meeting["meetingId"]


async def test_tokens_are_signed_jwts_the_room_url_accepts(server, org, other_org) -> None:
    async with api(server, org) as c:
        await create_room(c, roomName="private-one", privacy="private")
        admin = await token(c, roomName="private-one", isAdmin=True, name="Ann Admin", externalUserId="u-1",
                            ejectAfterElapsedTimeInSec=3600, disableScreenSharing=True)
        member = await token(c, roomName="private-one", name="Bob", expireUnixSec=unix(3600))
        everywhere = await token(c, globalToken=True)
        expired = await token(c, roomName="private-one", expireUnixSec=unix(-10))
        later = await token(c, roomName="private-one", notBeforeUnixSec=unix(3600))
    claims = jwt.decode(admin, SECRET, algorithms=["HS256"])
    assert claims["rn"] == "private-one" and claims["role"] == "host" and claims["org"] == org.organization_id
    assert claims["name"] == "Ann Admin" and claims["ext"] == "u-1" and claims["eject"] == 3600 and claims["ds"] is True
    async with api(server, other_org) as c:
        foreign = await token(c, globalToken=True)

    async with httpx.AsyncClient(base_url=server.base_url) as web:
        assert (await web.get("/private-one")).status_code == 403  # private: the page says a token is needed
        for good in (admin, member, everywhere):
            assert (await web.get("/private-one", params={"token": good})).status_code == 200
        for bad in (expired, later, foreign, "not-a-token"):
            assert (await web.get("/private-one", params={"token": bad})).status_code == 403

    async def join_with(tok: str | None) -> dict:
        async with Client(server.ws_url, "/private-one") as person:
            await person.send({"type": "join", "roomKey": tok})
            return await person.recv()

    joined = await join_with(admin)
    assert joined["type"] == "joined" and joined["role"] == "host" and joined["ejectAt"]
    assert joined["grants"] == {"audio": True, "video": True, "screen": False}
    joined = await join_with(member)
    assert joined["type"] == "joined" and joined["role"] == "member" and "grants" not in joined
    assert (await join_with(everywhere))["role"] == "member"
    for bad in (None, expired, later, foreign):
        refused = await join_with(bad)
        assert refused["type"] == "error" and refused["code"] == p.ErrorCode.TOKEN_REQUIRED
