"""A room made by the second vendor's API is the first vendor's room too: its call fires the organization's
Whereby webhooks and shows in ``/v1/insights``, and its four per-room webhook URLs get their events through
the same outbox (signed, in the delivery log). SQLite and PostgreSQL; participants over real WebSockets."""

from __future__ import annotations

import httpx

from herewith.webhooks.signing import verify_signature
from tests.metered.helpers import api, create_room
from tests.signaling.helpers import Client
from tests.webhooks.helpers import Receiver, await_for


async def test_per_room_webhooks_whereby_webhooks_and_insights(server, org, client) -> None:
    whereby, joins, sessions = Receiver().start(), Receiver().start(), Receiver().start()
    try:
        r = await client.post("/webhooks", json={"url": whereby.url})
        assert r.status_code == 201, r.text
        async with api(server, org) as vendor:
            room = await create_room(vendor, roomName="hooked", meetingJoinWebhook=joins.url,
                                     meetingLeftWebhook=joins.url, meetingStartedWebhook=sessions.url,
                                     meetingEndedWebhook=sessions.url)
            assert room["meetingJoinWebhook"] == joins.url
        hooks = (await client.get("/webhooks")).json()["results"]
        by_url = {h["url"]: h for h in hooks}
        assert sorted(by_url[joins.url]["events"]) == ["room.client.joined", "room.client.left"]
        assert sorted(by_url[sessions.url]["events"]) == ["room.session.ended", "room.session.started"]
        secrets = {url: (await client.post(f"/webhooks/{by_url[url]['webhookId']}/rotate-secret")).json()["secret"]
                   for url in (joins.url, sessions.url)}

        async with Client(server.ws_url, "/hooked") as ann, Client(server.ws_url, "/hooked") as bob:
            await ann.join(displayName="Ann", externalId="ext-ann")
            await bob.join(displayName="Bob")
            await await_for(lambda: len(sessions.events("room.session.started")) == 1)
        await await_for(lambda: len(sessions.events("room.session.ended")) == 1)  # after the 1 s grace
        await await_for(lambda: len(whereby.events("room.session.ended")) == 1)

        assert sorted(joins.types()) == ["room.client.joined"] * 2 + ["room.client.left"] * 2
        assert sessions.types() == ["room.session.started", "room.session.ended"]
        assert sorted(whereby.types()) == sorted(joins.types() + sessions.types())
        joined = joins.events("room.client.joined")[0]
        assert joined["data"]["roomName"] == "/hooked" and joined["data"]["meetingId"] == room["_id"]
        for receiver in (joins, sessions):
            for got in receiver.received:
                assert verify_signature(secrets[receiver.url], got.headers["Whereby-Signature"], got.body)
        deliveries = (await client.get(f"/webhooks/{by_url[joins.url]['webhookId']}/deliveries")).json()["results"]
        assert len(deliveries) == 4 and all(d["succeeded"] for d in deliveries)

        insights = (await client.get("/insights/rooms")).json()["results"]
        assert [(x["roomName"], x["totalSessions"], x["totalUniqueParticipants"]) for x in insights] == [
            ("/hooked", 1, 2)]

        async with api(server, org) as vendor:  # dropping a URL drops its endpoint (and its queue)
            r = await vendor.put("/room/hooked", json={"meetingJoinWebhook": None, "meetingLeftWebhook": None})
            assert r.status_code == 200 and "meetingJoinWebhook" not in r.json()
        assert joins.url not in {h["url"] for h in (await client.get("/webhooks")).json()["results"]}
    finally:
        for receiver in (whereby, joins, sessions):
            receiver.stop()
