"""The signaling WebSocket checks the browser's ``Origin`` before it accepts the connection: this server's own
pages, the pages allowed to embed rooms (``HEREWITH_FRAME_ANCESTORS``) and clients that send no ``Origin``
(programs, not browsers) get in; any other site's page is refused with 403 (herewith.signaling.endpoint)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import websockets

from herewith.config import Settings
from herewith.signaling.endpoint import origin_allowed
from tests.signaling.helpers import create_meeting
from tests.support.servers import OrgKey, ThreadServer, create_org_key

EMBEDDERS = ["https://app.example.com", "https://*.customer.example", "http://intranet.example:8080"]


@pytest.fixture
def strict_server(settings: Settings) -> Iterator[ThreadServer]:
    srv = ThreadServer(settings.model_copy(update={"frame_ancestors": EMBEDDERS})).start()
    yield srv
    srv.stop()


async def join(server: ThreadServer, room_name: str, origin: str | None) -> dict:
    kwargs = {"origin": origin} if origin is not None else {}
    async with websockets.connect(f"{server.ws_url}/signal/{room_name.lstrip('/')}", **kwargs) as ws:
        await ws.send('{"type": "join", "displayName": "Ann"}')
        return json.loads(await ws.recv())


async def refused(server: ThreadServer, room_name: str, origin: str) -> int:
    with pytest.raises(websockets.InvalidStatus) as caught:
        await join(server, room_name, origin)
    return caught.value.response.status_code


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "https://app.example.com.evil.example",
                                    "http://app.example.com", "https://customer.example",
                                    "http://intranet.example:8081", "https://evil.example:443"])
async def test_other_sites_are_refused_before_the_handshake(strict_server: ThreadServer, origin: str) -> None:
    async with httpx.AsyncClient(base_url=strict_server.base_url + "/v1", headers=(await _org(strict_server)).headers) as c:
        m = await create_meeting(c)
    assert await refused(strict_server, m["roomName"], origin) == 403


@pytest.mark.parametrize("origin", [None, "PUBLIC", "https://app.example.com", "https://app.example.com:443",
                                    "https://video.customer.example", "https://a.b.customer.example",
                                    "http://intranet.example:8080"])
async def test_own_pages_embedders_and_programs_join(strict_server: ThreadServer, origin: str | None) -> None:
    async with httpx.AsyncClient(base_url=strict_server.base_url + "/v1", headers=(await _org(strict_server)).headers) as c:
        m = await create_meeting(c)
    origin = strict_server.base_url if origin == "PUBLIC" else origin
    assert (await join(strict_server, m["roomName"], origin))["type"] == "joined"


async def test_any_origin_joins_when_any_site_may_embed(server: ThreadServer, client: httpx.AsyncClient) -> None:
    assert server.settings.frame_ancestors == ["*"]
    m = await create_meeting(client)
    assert (await join(server, m["roomName"], "https://evil.example"))["type"] == "joined"


async def _org(server: ThreadServer) -> OrgKey:
    return await create_org_key(server.settings)


@pytest.mark.parametrize("origin,host,sources,allowed", [
    (None, "meet.example.com", ["'none'"], True),
    ("https://meet.example.com", "internal:8080", ["'none'"], True),  # the public URL's origin
    ("https://MEET.example.com:443", "internal:8080", ["'none'"], True),
    ("http://localhost:8080", "localhost:8080", ["'none'"], True),  # the page was reached by another name
    ("http://localhost:8080", "localhost:8081", ["'none'"], False),
    ("https://evil.example", "meet.example.com", ["'none'"], False),
    ("https://evil.example", "meet.example.com", ["*"], True),
    ("https://evil.example", "meet.example.com", ["'self'"], False),
    ("https://evil.example", "meet.example.com", ["https:"], True),
    ("http://evil.example", "meet.example.com", ["https:"], False),
    ("https://x.example", "meet.example.com", ["x.example"], True),  # no scheme: http or https
    ("https://x.example:8443", "meet.example.com", ["https://x.example:*"], True),
    ("https://x.example:8443", "meet.example.com", ["https://x.example"], False),
    ("https://x.example", "meet.example.com", ["http://x.example"], True),  # http allows the upgrade
    ("null", "meet.example.com", ["*"], True),
    ("null", "meet.example.com", ["https:"], False),
    ("not a url", "meet.example.com", ["https://x.example"], False),
])
def test_origin_rules(origin: str | None, host: str, sources: list[str], allowed: bool) -> None:
    assert origin_allowed(origin, host, "https://meet.example.com", sources) is allowed
