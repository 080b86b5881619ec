"""A small signaling client for tests: real WebSocket, typed messages from herewith.signaling.protocol."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from herewith.signaling import protocol as p


class Client:
    """``async with Client(server, room) as c: await c.join(displayName="Ann"); msg = await c.expect("joined")``."""

    def __init__(self, ws_url: str, room_name: str) -> None:
        self.url = f"{ws_url}/signal/{room_name.lstrip('/')}"
        self.ws: ClientConnection | None = None
        self.inbox: list[dict[str, Any]] = []
        self.id: str | None = None
        self.joined: dict[str, Any] | None = None

    async def __aenter__(self) -> "Client":
        self.ws = await websockets.connect(self.url, max_size=2**20, ping_interval=None)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.ws.close()
        await asyncio.sleep(0.05)  # let the server process the departure before the test goes on

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        msg = json.loads(raw)
        p.parse_server_message(raw)  # every server frame is a valid protocol message
        return msg

    async def expect(self, type_: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
        """The next message of ``type_`` (earlier ones of other types are kept in ``inbox``; pings answered)."""
        for i, m in enumerate(self.inbox):
            if m["type"] == type_ and all(m.get(k) == v for k, v in fields.items()):
                return self.inbox.pop(i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = await self.recv(max(0.01, deadline - loop.time()))
            if msg["type"] == "ping" and type_ != "ping":
                await self.send({"type": "pong"})
                continue
            if msg["type"] == type_ and all(msg.get(k) == v for k, v in fields.items()):
                return msg
            self.inbox.append(msg)

    async def expect_error(self, code: str, timeout: float = 5.0) -> dict[str, Any]:
        return await self.expect("error", timeout, code=code)

    async def nothing(self, wait: float = 0.3, ignore: tuple[str, ...] = ("ping",)) -> None:
        """Assert no (non-ignored) message arrives within ``wait`` seconds."""
        try:
            while True:
                msg = await self.recv(wait)
                if msg["type"] not in ignore:
                    raise AssertionError(f"unexpected message {msg}")
        except (asyncio.TimeoutError, TimeoutError):
            return

    async def drain(self, wait: float = 0.2) -> list[dict[str, Any]]:
        """Consume and return whatever arrives within ``wait`` seconds (plus the inbox)."""
        got, self.inbox = self.inbox, []
        try:
            while True:
                got.append(await self.recv(wait))
        except (asyncio.TimeoutError, TimeoutError):
            return got

    async def join(self, expect: str | None = "joined", **fields: Any) -> dict[str, Any]:
        await self.send({"type": "join", **fields})
        if expect is None:
            return {}
        msg = await self.expect(expect)
        if expect == "joined":
            self.id = msg["participantId"]
            self.joined = msg
        return msg

    async def closed(self, timeout: float = 5.0) -> int:
        """Wait until the server closes the socket; return the close code."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else 1006
        raise AssertionError("socket still open")


async def create_meeting(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    payload = {"endDate": "2099-02-18T14:23:00.000Z", "fields": ["hostRoomUrl", "viewerRoomUrl"], **body}
    r = await client.post("/meetings", json=payload)
    assert r.status_code == 201, r.text
    return r.json()


def room_key(url: str) -> str:
    return url.split("roomKey=", 1)[1]


# SDP fragments for the viewer checks (real browser spelling).
SDP_SENDS = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n"
    "a=msid:stream1 track1\r\na=rtpmap:111 opus/48000/2\r\na=ssrc:1 cname:x\r\n"
)
SDP_RECVONLY = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\n"
)
