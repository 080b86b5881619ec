"""No roomKey (a host's bearer token, valid until endDate + 1 h) or other token-like query parameter in any log
line: uvicorn's access and error logs of a real ``herewith serve`` child, and structlog events
(herewith.kit.logs)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import structlog
import websockets

from herewith.config import Settings
from herewith.kit.logs import RedactSecrets, configure_logging, is_secret_name, redact, redact_event
from tests.support.servers import ProcessServer, create_org_key

FUTURE = "2099-02-18T14:23:00.000Z"


def wait_for_line(path: Path, needle: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if needle in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} not logged within {timeout}s; log:\n{text[-3000:]}")


async def test_room_keys_never_reach_the_server_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log = tmp_path / "server.log"
    srv = ProcessServer({"HEREWITH_DATA_DIR": str(data), "HEREWITH_SECRET_KEY": "k" * 32,
                         "HEREWITH_LOG_LEVEL": "info"}, log_path=log).start()
    try:
        org = await create_org_key(Settings(data_dir=data, secret_key="k" * 32))
        async with httpx.AsyncClient(base_url=srv.base_url, timeout=10) as web:
            r = await web.post("/v1/meetings", headers=org.headers,
                               json={"endDate": FUTURE, "fields": ["hostRoomUrl"]})
            assert r.status_code == 201, r.text
            host = urlsplit(r.json()["hostRoomUrl"])
            room_key = parse_qs(host.query)["roomKey"][0]
            assert len(room_key) > 20
            page = await web.get(f"{host.path}?roomKey={room_key}&displayName=Ann")
            assert page.status_code == 200
            # other token-like names, any case, and on a 404
            assert (await web.get(f"/no-such-room?ROOMKEY={room_key}&token=T0KEN-1&access_token=T0KEN-2"
                                  f"&Key=T0KEN-3&secret=T0KEN-4&roomName=kept")).status_code == 404
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/signal{host.path}?roomKey={room_key}"):
                pass
            done = "/healthz?done=1"
            await web.get(done)
        text = await asyncio.to_thread(wait_for_line, log, done)
    finally:
        srv.stop()
    assert room_key not in text
    assert "T0KEN" not in text
    assert f'"GET {host.path}?roomKey=[redacted]&displayName=Ann HTTP/1.1" 200' in text
    assert ("/no-such-room?ROOMKEY=[redacted]&token=[redacted]&access_token=[redacted]&Key=[redacted]"
            "&secret=[redacted]&roomName=kept") in text
    assert f"/signal{host.path}?roomKey=[redacted]" in text  # uvicorn.error: the WebSocket handshake line


@pytest.mark.parametrize("name,secret", [
    ("roomKey", True), ("ROOMKEY", True), ("room_key", True), ("token", True), ("access_token", True),
    ("key", True), ("Secret", True), ("apiKey", True), ("client-secret", True), ("password", True),
    ("room%4Bey", True), ("roomName", False), ("displayName", False), ("metadata", False), ("keyboard", False),
])
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_redact() -> None:
    assert redact("GET /r?roomKey=abc.def-g_h&x=1 HTTP/1.1") == "GET /r?roomKey=[redacted]&x=1 HTTP/1.1"
    assert redact("https://h/r?a=1&token=t#frag") == "https://h/r?a=1&token=[redacted]#frag"
    assert redact('url="/r?key=v" other') == 'url="/r?key=[redacted]" other'
    assert redact("/r?roomKey=&x=1") == "/r?roomKey=&x=1"  # nothing to hide
    assert redact("no query here; key: value") == "no query here; key: value"
    assert redact(redact("/r?roomKey=abc")) == "/r?roomKey=[redacted]"


def test_stdlib_filter_keeps_uvicorn_access_arguments() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/r?roomKey=SECRET&x=1", "1.1", 200), None)
    assert RedactSecrets().filter(record) is True
    assert record.args == ("127.0.0.1:5000", "GET", "/r?roomKey=[redacted]&x=1", "1.1", 200)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /r?roomKey=[redacted]&x=1 HTTP/1.1" 200'


def test_configure_logging_installs_the_filter_once() -> None:
    configure_logging("info")
    configure_logging("info")
    for name in ("uvicorn.access", "uvicorn.error"):
        assert sum(isinstance(f, RedactSecrets) for f in logging.getLogger(name).filters) == 1


def test_structlog_events_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info")
    structlog.get_logger("test").info("opened https://h/room?roomKey=SECRET-1", url="/room?token=SECRET-2&a=b",
                                      room_key="SECRET-3", nested={"access_token": "SECRET-4", "u": "?key=SECRET-5"},
                                      roomName="/room")
    try:
        raise ValueError("bad url /r?roomKey=SECRET-6")
    except ValueError:
        structlog.get_logger("test").exception("failed")
    out = capsys.readouterr()
    text = out.out + out.err
    assert "SECRET" not in text
    assert "roomKey=[redacted]" in text and "room_key='[redacted]'" in text and "roomName='/room'" in text
    assert redact_event(None, "info", {"event": "e", "apiKey": "x"}) == {"event": "e", "apiKey": "[redacted]"}
