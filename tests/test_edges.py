"""Text no database can store never reaches one: NUL (U+0000) and unpaired surrogates are refused at the edge
(:class:`herewith.kit.asgi.TextGuard`), in the path, the query and any JSON body, with the contract's error
body (docs/api.md, "Errors"); and a client that goes away in the middle of an upload is not an error.

Every case runs on SQLite and PostgreSQL (PostgreSQL refuses NUL in text: these were 500s there).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from herewith.config import Settings
from herewith.errors import NOT_FOUND
from tests.conftest import DATABASES
from tests.support.servers import (
    OrgKey,
    ProcessServer,
    ThreadServer,
    create_org_key,
    create_pg_database,
    drop_pg_database,
    run_sync,
)

FUTURE = "2099-02-18T14:23:00.000Z"
NUL_PROBLEM = "must not contain NUL (U+0000)"


@pytest.fixture(scope="module", params=DATABASES)
def edge_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    """One server per database for the whole module (the cases only read, or are refused)."""
    url = create_pg_database() if request.param == "postgresql" else None
    settings = Settings(data_dir=tmp_path_factory.mktemp("edges") / "data", database_url=url,
                        secret_key="test-secret-key-0123456789abcdef")
    srv = ThreadServer(settings).start()
    yield srv
    srv.stop()
    if url:
        drop_pg_database(url)


@pytest.fixture(scope="module")
def edge_org(edge_server: ThreadServer) -> OrgKey:
    return run_sync(create_org_key(edge_server.settings, "Edges"))


@pytest.fixture(scope="module")
def room(edge_server: ThreadServer, edge_org: OrgKey) -> dict[str, Any]:
    r = httpx.post(edge_server.base_url + "/v1/meetings", headers=edge_org.headers,
                   json={"endDate": FUTURE, "fields": ["hostRoomUrl"]})
    assert r.status_code == 201, r.text
    return r.json()


def call(server: ThreadServer, org: OrgKey, method: str, path: str, **kwargs: Any) -> httpx.Response:
    # A fresh connection per call: a 500 would close a kept-alive one and blame the next case.
    with httpx.Client(base_url=server.base_url, headers=org.headers, timeout=30) as http:
        return http.request(method, path, **kwargs)


def assert_names(r: httpx.Response, field: str, problem: str = NUL_PROBLEM) -> None:
    assert r.status_code == 400, r.text
    assert r.json() == {"error": f"Invalid {field}: {problem}", "data": {field: problem}}


# ---- the path: no resource has NUL in its name, so it is a 404 --------------------------------------------

NUL_PATHS = [
    ("GET", "/v1/meetings/%00", None),
    ("GET", "/v1/meetings/abc%00def", None),
    ("DELETE", "/v1/meetings/%00", None),
    ("GET", "/v1/webhooks/%00", None),
    ("PATCH", "/v1/webhooks/%00", {"description": "x"}),
    ("DELETE", "/v1/webhooks/%00", None),
    ("POST", "/v1/webhooks/%00/rotate-secret", None),
    ("GET", "/v1/webhooks/%00/deliveries", None),
    ("POST", "/v1/webhooks/wh/events/%00/redeliver", None),
    ("PUT", "/v1/rooms/%00/theme/tokens", {"tokensPreset": "default"}),
    ("PUT", "/v1/rooms/%2F%00/theme/room-background", {"palette": "grey", "theme": "rocks"}),
    ("PUT", "/v1/rooms/%00/theme/logo", {"theme": "default"}),
    ("GET", "/%00", None),
    ("HEAD", "/room%00", None),
    ("GET", "/themes/rooms/%00/logo", None),
]


@pytest.mark.parametrize("method,path,body", NUL_PATHS, ids=[f"{m} {p}" for m, p, _ in NUL_PATHS])
def test_nul_in_the_path_is_a_404(edge_server: ThreadServer, edge_org: OrgKey, method: str, path: str,
                                  body: Any) -> None:
    r = call(edge_server, edge_org, method, path, json=body)
    assert r.status_code == 404, r.text
    if method != "HEAD":
        assert r.json() == {"error": NOT_FOUND}


# ---- the query: a 400 naming the parameter ----------------------------------------------------------------

NUL_QUERIES = [
    ("/v1/insights/room-sessions?roomName=%00", "roomName"),
    ("/v1/insights/room-sessions?roomName=room%00x&sortBy=startedAt", "roomName"),
    ("/v1/insights/rooms?roomName[exact]=%00", "roomName[exact]"),
    ("/v1/insights/rooms?roomName%5BstartsWith%5D=a%00", "roomName[startsWith]"),
    ("/v1/insights/rooms?roomName[contains]=%00", "roomName[contains]"),
    ("/v1/insights/rooms?createdAt[from]=%00", "createdAt[from]"),
    ("/v1/insights/participants?externalId=%00", "externalId"),
    ("/v1/insights/participants?roomSessionId=%00", "roomSessionId"),
    ("/v1/insights/participant?roomSessionId=%00&participantId=p", "roomSessionId"),
    ("/v1/insights/participant?roomSessionId=s&participantId=%00", "participantId"),
    ("/v1/meetings?roomName[startsWith]=%00", "roomName[startsWith]"),
    ("/v1/meetings?cursor=%00", "cursor"),
    ("/v1/meetings?fields=hostRoomUrl%00", "fields"),
    ("/v1/webhooks?cursor=%00", "cursor"),
    ("/some-room?metadata=%00", "metadata"),
    ("/some-room?displayName=Ann&externalId=x%00", "externalId"),
]


@pytest.mark.parametrize("path,field", NUL_QUERIES, ids=[p for p, _ in NUL_QUERIES])
def test_nul_in_the_query_is_a_400_naming_the_parameter(edge_server: ThreadServer, edge_org: OrgKey, path: str,
                                                       field: str) -> None:
    assert_names(call(edge_server, edge_org, "GET", path), field)


def test_nul_in_a_query_parameter_name_names_the_query(edge_server: ThreadServer, edge_org: OrgKey) -> None:
    assert_names(call(edge_server, edge_org, "GET", "/v1/meetings?x%00y=1"), "query")


# ---- JSON bodies: a 400 naming the field, for every /v1 body ---------------------------------------------

S3 = {"provider": "s3", "bucket": "b", "accessKeyId": "k", "accessKeySecret": "s"}
NUL_BODIES = [
    ("POST", "/v1/webhooks", {"url": "https://a\u0000b.example/hook"}, "url"),
    ("POST", "/v1/webhooks", {"url": "https://hooks.example/", "events": ["room.client.joined\u0000"]}, "events.0"),
    ("POST", "/v1/webhooks", {"url": "https://hooks.example/", "description": "x\u0000"}, "description"),
    ("PATCH", "/v1/webhooks/wh-1", {"description": "\u0000"}, "description"),
    ("POST", "/v1/meetings", {"endDate": FUTURE, "roomNamePrefix": "team\u0000"}, "roomNamePrefix"),
    ("POST", "/v1/meetings",
     {"endDate": FUTURE, "recording": {"type": "cloud", "startTrigger": "none",
                                       "destination": {**S3, "bucket": "my\u0000bucket"}}},
     "recording.destination.bucket"),
    ("POST", "/v1/meetings",
     {"endDate": FUTURE, "streaming": {"destination": {"url": "rtmp://live.example/app\u0000"}, "startTrigger": "none"}},
     "streaming.destination.url"),
    ("POST", "/v1/meetings", {"endDate": FUTURE, "anUnknownKey\u0000": 1}, "anUnknownKey\\u0000"),
    ("PUT", "/v1/rooms/{room}/theme/tokens",
     {"tokens": {"colors": {"primary": "#000000", "secondary": "#ffffff", "focus": "#00000\u0000"}},
      "tokensPreset": "custom"}, "tokens.colors.focus"),
    ("PUT", "/v1/rooms/{room}/theme/room-background", {"palette": "grey\u0000", "theme": "rocks"}, "palette"),
]


@pytest.mark.parametrize("method,path,body,field", NUL_BODIES,
                         ids=[f"{m} {p} {f}" for m, p, _, f in NUL_BODIES])
def test_nul_in_a_json_body_is_a_400_naming_the_field(edge_server: ThreadServer, edge_org: OrgKey,
                                                      room: dict[str, Any], method: str, path: str, body: Any,
                                                      field: str) -> None:
    path = path.format(room=room["roomName"].lstrip("/"))
    assert_names(call(edge_server, edge_org, method, path, json=body), field)
    # sent without a Content-Type, as clients of the vendor's API may (read as JSON by /v1/meetings)
    r = call(edge_server, edge_org, method, path, content=json.dumps(body).encode())
    if path == "/v1/meetings":
        assert_names(r, field)
    else:
        assert r.status_code == 400, r.text  # a body without a Content-Type is refused there


@pytest.mark.parametrize("method,path,raw,field", [
    ("POST", "/v1/webhooks", b'{"url": "https://hooks.example/", "description": "x\\ud800"}', "description"),
    ("POST", "/v1/meetings", b'{"endDate": "2099-02-18T14:23:00Z", "roomNamePrefix": "\\udfff"}', "roomNamePrefix"),
    ("POST", "/v1/meetings", b'{"endDate": "2099-02-18T14:23:00Z", "fields": ["\\ud83d"]}', "fields.0"),
])
def test_unpaired_surrogates_in_a_json_body_are_a_400(edge_server: ThreadServer, edge_org: OrgKey, method: str,
                                                      path: str, raw: bytes, field: str) -> None:
    r = call(edge_server, edge_org, method, path, content=raw, headers={"Content-Type": "application/json"})
    assert_names(r, field, "must be valid Unicode text (an unpaired surrogate was sent)")


def test_escaped_backslashes_and_surrogate_pairs_are_fine(edge_server: ThreadServer, edge_org: OrgKey) -> None:
    """``\\\\u0000`` is a backslash followed by ``u0000``, and a surrogate pair is one character: both are
    stored like any text."""
    raw = (b'{"endDate": "2099-02-18T14:23:00Z", "recording": {"type": "cloud", "startTrigger": "none", '
           b'"destination": {"provider": "s3", "bucket": "C:\\\\u0000 \\ud83d\\ude00", "accessKeyId": "k", '
           b'"accessKeySecret": "s"}}}')
    r = call(edge_server, edge_org, "POST", "/v1/meetings", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text


def test_nul_in_a_signaling_path_refuses_the_handshake(edge_server: ThreadServer) -> None:
    async def connect() -> None:
        async with websockets.connect(edge_server.ws_url + "/signal/%00"):
            pass

    with pytest.raises(websockets.InvalidStatus) as refused:
        run_sync(connect(), timeout=30)
    assert refused.value.response.status_code == 403


# ---- a client that disconnects in the middle of an upload --------------------------------------------------

def test_a_client_gone_mid_upload_is_not_logged_as_an_error(tmp_path: Path, database_url: str | None) -> None:
    """Half a multipart body, then the socket closes: the server logs no error and no traceback."""
    env = {"HEREWITH_DATA_DIR": str(tmp_path / "data"), "HEREWITH_SECRET_KEY": "test-secret-key-0123456789abcdef",
           "HEREWITH_LOG_LEVEL": "info"}
    if database_url:
        env["HEREWITH_DATABASE_URL"] = database_url
    log = tmp_path / "server.log"
    srv = ProcessServer(env, log_path=log).start()
    try:
        org = run_sync(create_org_key(Settings(data_dir=tmp_path / "data", database_url=database_url)))
        room = httpx.post(srv.base_url + "/v1/meetings", headers=org.headers, json={"endDate": FUTURE})
        assert room.status_code == 201, room.text
        name = room.json()["roomName"].lstrip("/")
        boundary = "herewith-boundary"
        part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"logo.png\"\r\n"
                "Content-Type: image/png\r\n\r\n").encode() + b"\x89PNG\r\n\x1a\n" + b"\x00" * 20_000
        declared = len(part) * 2
        head = (f"PUT /v1/rooms/{name}/theme/logo HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
                f"Authorization: Bearer {org.api_key}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {declared}\r\n\r\n")
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
                s.sendall(head.encode() + part)
                time.sleep(0.3)  # the server is reading the body now
        time.sleep(0.5)
        assert httpx.get(srv.base_url + "/healthz").status_code == 200
    finally:
        srv.stop()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    assert "unhandled_error" not in text and "level='error'" not in text, text[-3000:]
