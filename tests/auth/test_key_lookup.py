"""The API key of every ``/v1`` request is looked up on a connection of its own that goes back to the pool
before the endpoint runs (herewith.auth.dependencies.get_organization): a request whose body is still on
its way (a theme image upload reads it in the endpoint) holds no database connection meanwhile. On SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from herewith.config import Settings
from tests.rooms.theme_helpers import png
from tests.support.servers import ThreadServer, create_org_key

END = {"endDate": "2099-02-18T14:23:00.000Z"}


def _checked_out(server: ThreadServer) -> int:
    services = server.services
    return sum(engine.sync_engine.pool.checkedout() for engine in (services.engine, services.read_engine))


async def test_a_request_waiting_for_its_body_holds_no_database_connection(settings: Settings) -> None:
    # No sweeper or webhook worker taking connections while the pools are watched.
    server = ThreadServer(settings.model_copy(update={"background_tasks": False})).start()
    try:
        org = await create_org_key(server.settings)
        async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=org.headers, timeout=30) as client:
            made = await client.post("/meetings", json=END)
            room = made.json()["roomName"].lstrip("/")
            remaining = int(made.headers["X-RateLimit-Remaining"])

            boundary = uuid.uuid4().hex
            body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"logo.png\"\r\n"
                    f"Content-Type: image/png\r\n\r\n").encode() + png() + f"\r\n--{boundary}--\r\n".encode()
            head = (f"PUT /v1/rooms/{room}/theme/logo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {org.api_key}\r\nContent-Length: {len(body)}\r\n"
                    f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode()
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            try:
                writer.write(head + body[:40])  # the headers and the start of the body; the rest waits
                await writer.drain()
                # The upload is authenticated and charged (PUT: 3 points) before its endpoint reads the body.
                for probes in range(1, 200):
                    probe = await client.get("/meetings", params={"limit": 1})  # 1 point each
                    left = int(probe.headers["X-RateLimit-Remaining"])
                    if left == remaining - probes - 3:
                        break
                    assert left == remaining - probes, (left, remaining, probes)
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError("the upload was never charged")
                await asyncio.sleep(0.1)
                samples = []
                for _ in range(5):
                    samples.append(_checked_out(server))
                    await asyncio.sleep(0.05)
                assert min(samples) == 0, samples
                # and the server goes on writing meanwhile
                assert (await client.post("/meetings", json=END)).status_code == 201

                writer.write(body[40:])
                await writer.drain()
                status = await asyncio.wait_for(reader.readline(), timeout=30)
                assert status.startswith(b"HTTP/1.1 204"), status
            finally:
                writer.close()
    finally:
        server.stop()
