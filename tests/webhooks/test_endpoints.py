"""``/v1/webhooks``: CRUD, URL validation, secrets, deliveries log, redelivery, organization isolation."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from herewith.webhooks.signing import verify_signature
from tests.webhooks.helpers import Receiver, Room, await_for, person


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


async def test_create_returns_secret_once_and_list_get_patch_delete(client):
    r = await client.post("/webhooks", json={"url": "https://example.invalid/hook", "events": ["room.client.joined"],
                                             "description": "main"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["events"] == ["room.client.joined"] and created["enabled"] is True
    assert created["createdAt"].endswith("Z")
    got = (await client.get(f"/webhooks/{created['webhookId']}")).json()
    assert "secret" not in got and got["url"] == "https://example.invalid/hook"
    listed = (await client.get("/webhooks")).json()
    assert [w["webhookId"] for w in listed["results"]] == [created["webhookId"]] and listed["cursor"] is None
    assert all("secret" not in w for w in listed["results"])
    r = await client.patch(f"/webhooks/{created['webhookId']}", json={"enabled": False, "events": ["room.session.ended"]})
    assert r.status_code == 200 and r.json()["enabled"] is False and r.json()["events"] == ["room.session.ended"]
    assert (await client.delete(f"/webhooks/{created['webhookId']}")).status_code == 204
    assert (await client.delete(f"/webhooks/{created['webhookId']}")).status_code == 204  # idempotent
    assert (await client.get(f"/webhooks/{created['webhookId']}")).status_code == 404


async def test_default_events_are_all_types(client):
    created = (await client.post("/webhooks", json={"url": "http://127.0.0.1:9/x"})).json()
    assert "room.client.knockCancelled" in created["events"] and "room.session.started" in created["events"]


BAD_URLS = ["ftp://127.0.0.1/x", "javascript:alert(1)", "127.0.0.1:8080/x", "http://", "", "http://exa mple.com/",
            "file:///etc/passwd", "http://127.0.0.1:99999/", "https://[::1/x", "http://" + "a" * 2000 + ".com/"]


async def test_bad_urls_are_400_naming_url(client):
    for url in BAD_URLS:
        r = await client.post("/webhooks", json={"url": url})
        assert r.status_code == 400, (url, r.text)
        assert "url" in r.json()["data"], url
    r = await client.post("/webhooks", json={"url": 42})
    assert r.status_code == 400 and "url" in r.json()["data"]
    assert (await client.get("/webhooks")).json()["results"] == []  # nothing was created


async def test_bad_events_and_missing_url_are_400(client):
    r = await client.post("/webhooks", json={"url": "http://127.0.0.1:9/", "events": ["room.nope"]})
    assert r.status_code == 400 and "events" in r.json()["data"]
    r = await client.post("/webhooks", json={"url": "http://127.0.0.1:9/", "events": []})
    assert r.status_code == 400 and "events" in r.json()["data"]
    r = await client.post("/webhooks", json={})
    assert r.status_code == 400 and "url" in r.json()["data"]
    r = await client.patch("/webhooks/whatever", json={"url": "gopher://x"})
    assert r.status_code == 400


async def test_list_pages(client):
    ids = [(await client.post("/webhooks", json={"url": f"http://127.0.0.1:9/{i}"})).json()["webhookId"] for i in range(5)]
    seen, cursor = [], None
    while True:
        page = (await client.get("/webhooks", params={"limit": 2, **({"cursor": cursor} if cursor else {})})).json()
        seen += [w["webhookId"] for w in page["results"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert (await client.get("/webhooks", params={"limit": 0})).status_code == 400
    assert (await client.get("/webhooks", params={"cursor": "%%%"})).status_code == 400


async def test_rotate_secret_signs_with_the_new_secret(client, server, org, receiver):
    hook = (await client.post("/webhooks", json={"url": receiver.url})).json()
    rotated = (await client.post(f"/webhooks/{hook['webhookId']}/rotate-secret")).json()
    assert rotated["webhookId"] == hook["webhookId"] and rotated["secret"] != hook["secret"]
    meeting = (await client.post("/meetings", json={"endDate": "2099-02-18T14:23:00.000Z"})).json()
    Room(server, meeting, org.organization_id).knock(person("Kim"))
    await await_for(lambda: receiver.received)
    got = receiver.received[0]
    assert verify_signature(rotated["secret"], got.headers["Whereby-Signature"], got.body)
    assert not verify_signature(hook["secret"], got.headers["Whereby-Signature"], got.body)


async def test_organizations_never_see_each_others_webhooks(client, server, org, other_org, receiver):
    mine = (await client.post("/webhooks", json={"url": receiver.url})).json()
    async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=other_org.headers) as other:
        theirs = (await other.post("/webhooks", json={"url": receiver.url, "events": ["room.client.knocked"]})).json()
        assert [w["webhookId"] for w in (await other.get("/webhooks")).json()["results"]] == [theirs["webhookId"]]
        for method, path in [("GET", ""), ("PATCH", ""), ("POST", "/rotate-secret"), ("GET", "/deliveries"),
                             ("POST", "/events/x/redeliver")]:
            r = await other.request(method, f"/webhooks/{mine['webhookId']}{path}", json={} if method != "GET" else None)
            assert r.status_code == 404, (method, path, r.text)
        assert (await other.delete(f"/webhooks/{mine['webhookId']}")).status_code == 204
    assert (await client.get(f"/webhooks/{mine['webhookId']}")).status_code == 200  # still there
    # An event in my room goes to my endpoint only.
    meeting = (await client.post("/meetings", json={"endDate": "2099-02-18T14:23:00.000Z"})).json()
    Room(server, meeting, org.organization_id).knock(person("Kim"))
    await await_for(lambda: receiver.received)
    await_n = len(receiver.received)
    assert await_n == 1 and verify_signature(mine["secret"], receiver.received[0].headers["Whereby-Signature"],
                                             receiver.received[0].body)


async def test_event_filter_and_disabled_endpoint(client, server, org, receiver):
    await client.post("/webhooks", json={"url": receiver.url, "events": ["room.client.knockCancelled"]})
    off = (await client.post("/webhooks", json={"url": receiver.url})).json()
    await client.patch(f"/webhooks/{off['webhookId']}", json={"enabled": False})
    meeting = (await client.post("/meetings", json={"endDate": "2099-02-18T14:23:00.000Z"})).json()
    room = Room(server, meeting, org.organization_id)
    kim = person("Kim", metadata="meta")
    room.knock(kim)
    room.cancel_knock(kim)
    await await_for(lambda: receiver.received)
    assert receiver.types() == ["room.client.knockCancelled"]
    data = receiver.events()[0]["data"]
    assert data == {"meetingId": meeting["meetingId"], "roomName": meeting["roomName"], "roomSessionId": None,
                    "participantId": kim.participant_id, "displayName": "Kim", "metadata": "meta", "externalId": None}


async def test_deliveries_log_and_redelivery_keep_the_event_id(client, server, org, receiver):
    hook = (await client.post("/webhooks", json={"url": receiver.url})).json()
    meeting = (await client.post("/meetings", json={"endDate": "2099-02-18T14:23:00.000Z"})).json()
    Room(server, meeting, org.organization_id).knock(person("Kim"))
    await await_for(lambda: receiver.received)
    deliveries = await _deliveries(client, hook["webhookId"], 1)
    d = deliveries[0]
    assert d["succeeded"] is True and d["statusCode"] == 200 and d["attempt"] == 1 and d["type"] == "room.client.knocked"
    event_id = receiver.events()[0]["id"]
    assert d["eventId"] == event_id
    r = await client.post(f"/webhooks/{hook['webhookId']}/events/{event_id}/redeliver")
    assert r.status_code == 202 and r.json()["eventId"] == event_id
    await await_for(lambda: len(receiver.received) == 2)
    assert receiver.received[1].body == receiver.received[0].body  # same id, same bytes
    deliveries = await _deliveries(client, hook["webhookId"], 2)
    assert [x["eventId"] for x in deliveries] == [event_id, event_id]
    assert (await client.post(f"/webhooks/{hook['webhookId']}/events/nope/redeliver")).status_code == 404
    page = (await client.get(f"/webhooks/{hook['webhookId']}/deliveries", params={"limit": 1})).json()
    assert len(page["results"]) == 1 and page["cursor"]
    page2 = (await client.get(f"/webhooks/{hook['webhookId']}/deliveries", params={"limit": 1, "cursor": page["cursor"]})).json()
    assert page2["results"][0]["deliveryId"] != page["results"][0]["deliveryId"] and page2["cursor"] is None


async def _deliveries(client, webhook_id, n):
    for _ in range(200):
        results = (await client.get(f"/webhooks/{webhook_id}/deliveries")).json()["results"]
        if len(results) >= n:
            return results
        await asyncio.sleep(0.05)
    raise AssertionError("deliveries not logged")
