"""``HEREWITH_LOG_FORMAT=json``: a real ``herewith serve`` child writes its log lines as JSON objects, and every
line written while a request is served carries that request's id (``X-Request-Id`` accepted when well formed,
else generated; echoed back), uvicorn's access lines and Herewith's own events alike."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.servers import ProcessServer
from tests.web.test_log_redaction import wait_for_line


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def test_json_log_lines_carry_the_request_id(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    srv = ProcessServer({"HEREWITH_DATA_DIR": str(tmp_path / "data"), "HEREWITH_SECRET_KEY": "j" * 32,
                         "HEREWITH_LOG_FORMAT": "json", "HEREWITH_LOG_LEVEL": "info",
                         "HEREWITH_FRAME_ANCESTORS": "https://app.example.com"}, log_path=log).start(timeout=90)
    try:
        async with httpx.AsyncClient(base_url=srv.base_url, timeout=10) as web:
            r = await web.get("/healthz?n=1", headers={"X-Request-Id": "req-abc.123"})
            assert r.status_code == 200 and r.headers["x-request-id"] == "req-abc.123"
            r = await web.get("/healthz?n=2")
            generated = r.headers["x-request-id"]
            assert re.fullmatch(r"[0-9a-f]{32}", generated)
            r = await web.get("/healthz?n=3", headers={"X-Request-Id": "two words<script>"})  # replaced, not refused
            assert r.status_code == 200 and re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
            replaced = r.headers["x-request-id"]
            # a page of another site opening the signaling socket: refused, and logged under the handshake's id
            with pytest.raises(websockets.InvalidStatus):
                async with websockets.connect(f"ws://127.0.0.1:{srv.port}/signal/some-room",
                                              origin="https://evil.example",
                                              additional_headers={"X-Request-Id": "ws-req-7"}):
                    pass
            await web.get("/healthz?done=1")
        text = await asyncio.to_thread(wait_for_line, log, "done=1")
    finally:
        srv.stop()
    lines = json_lines(text)
    assert lines, text[-2000:]
    started = [line for line in lines if line.get("event") == "started"]
    assert started and started[0]["level"] == "info" and "timestamp" in started[0]

    def access(n: str) -> dict:
        found = [line for line in lines if line.get("logger") == "uvicorn.access" and line.get("path") == f"/healthz?n={n}"]
        assert len(found) == 1, text[-3000:]
        return found[0]

    first = access("1")
    assert first["request_id"] == "req-abc.123"
    assert first["method"] == "GET" and first["status"] == 200 and first["level"] == "info"
    assert access("2")["request_id"] == generated
    assert access("3")["request_id"] == replaced
    refused = [line for line in lines if line.get("event") == "signaling_origin_refused"]
    assert len(refused) == 1 and refused[0]["request_id"] == "ws-req-7", text[-3000:]
    assert refused[0]["origin"] == "https://evil.example"
