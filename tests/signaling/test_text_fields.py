"""Text fields of signaling messages carry no NUL, no unpaired surrogate and, in the join's identifiers, no
control character: such a frame is ``malformed`` and nothing of it is stored (herewith.signaling.protocol).
Before, PostgreSQL refused the participant's row and the join's event was dropped. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from herewith.signaling import protocol as p
from tests.signaling.helpers import Client, create_meeting
from tests.support.servers import ThreadServer

REFUSED_JOINS = [
    ("metadata", "a\u0000b", "must not contain NUL (U+0000)"),
    ("userAgent", "UA/1.0\u0000", "must not contain NUL (U+0000)"),
    ("deviceId", "\u0000", "must not contain NUL (U+0000)"),
    ("displayName", "Ann\u0000", "must not contain NUL (U+0000)"),
    ("roomKey", "key\u0000", "must not contain NUL (U+0000)"),
    ("resumeToken", "t\u0000", "must not contain NUL (U+0000)"),
    ("userAgent", "UA\u0001", "must not contain control characters"),
    ("deviceId", "dev\u001b[31m", "must not contain control characters"),
    ("deviceId", "dev\u007f", "must not contain control characters"),
    ("resumeToken", "t\nx", "must not contain control characters"),
    ("roomKey", "k\tk", "must not contain control characters"),
    ("metadata", "bell\u0007", "must not contain control characters other than tab, line feed and carriage return"),
]


@pytest.mark.parametrize("field,value,problem", REFUSED_JOINS, ids=[f"{f}-{v!r}" for f, v, _ in REFUSED_JOINS])
async def test_join_text_fields_refuse_nul_and_control_characters(server: ThreadServer, client: httpx.AsyncClient,
                                                                  field: str, value: str, problem: str) -> None:
    m = await create_meeting(client)
    async with Client(server.ws_url, m["roomName"]) as c:
        await c.send({"type": "join", field: value})
        err = await c.expect_error("malformed")
        assert err["message"] == f"{field}: {problem}"
        ok = await c.join(displayName="Ann")
        assert ok["role"] == "visitor"


async def test_unpaired_surrogates_are_malformed(server: ThreadServer, client: httpx.AsyncClient) -> None:
    m = await create_meeting(client)
    async with Client(server.ws_url, m["roomName"]) as c:
        await c.send('{"type": "join", "displayName": "x\\ud800"}')
        err = await c.expect_error("malformed")
        assert err["message"] == "displayName: must be valid Unicode text (an unpaired surrogate was sent)"
        await c.send('{"type": "join", "displayName": "Ann \\ud83d\\ude00"}')  # a pair is one character
        assert (await c.expect("joined"))["role"] == "visitor"
        await c.send('{"type": "chat", "text": "\\udc00"}')
        assert (await c.expect_error("malformed"))["message"].startswith("text: must be valid Unicode")


async def test_nul_anywhere_in_a_frame_is_malformed(server: ThreadServer, client: httpx.AsyncClient) -> None:
    m = await create_meeting(client)
    async with Client(server.ws_url, m["roomName"]) as a, Client(server.ws_url, m["roomName"]) as b:
        await a.join(displayName="A")
        await b.join(displayName="B")
        for frame, field in [
            ({"type": "chat", "text": "hi\u0000"}, "text"),
            ({"type": "offer", "to": b.id, "sdp": "v=0\r\n\u0000"}, "sdp"),
            ({"type": "candidate", "to": b.id, "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host",
              "sdpMid": "0\u0000"}, "sdpMid"),
            ({"type": "update", "streams": {"camera": "cam\u0000"}}, "streams.camera"),
            ({"type": "sfu_publish", "sdp": "v=0", "sources": {"0\u0000": "camera"}}, "sources.0\\u0000"),
        ]:
            await a.send(frame)
            err = await a.expect_error("malformed")
            assert err["message"] == f"{field}: must not contain NUL (U+0000)", frame
        await b.nothing(0.2)
        # line breaks and tabs are text: a multi-line chat message goes through
        await a.send({"type": "chat", "text": "line 1\n\tline 2"})
        assert (await b.expect("chat"))["text"] == "line 1\n\tline 2"


async def test_a_join_with_unusual_but_valid_text_is_recorded(server: ThreadServer, client: httpx.AsyncClient) -> None:
    """Metadata with line breaks and emoji, a user agent with punctuation: admitted and stored (the
    participant appears in insights once a second person makes it a room session)."""
    m = await create_meeting(client)
    async with Client(server.ws_url, m["roomName"]) as a, Client(server.ws_url, m["roomName"]) as b:
        await a.join(displayName="Ann \U0001F600", externalId="ext-text", metadata='{"a": 1,\n\t"b": "\u00e9\U0001F600"}',
                     userAgent="Mozilla/5.0 (X11; Linux x86_64) \u00e9", deviceId="dev-\u00e9")
        await b.join(displayName="Bob")
        for _ in range(100):
            r = await client.get("/insights/participants", params={"externalId": "ext-text"})
            if r.status_code == 200 and r.json()["results"]:
                break
            await asyncio.sleep(0.05)
        assert r.json()["results"][0]["displayName"] == "Ann \U0001F600", r.text
        assert r.json()["results"][0]["deviceId"] == "dev-\u00e9"


@pytest.mark.parametrize("text,message", [
    ('{"type": "join", "metadata": "\\u0000"}', "metadata: must not contain NUL (U+0000)"),
    ('{"type": "join", "metadata": "ok\\r\\n\\t"}', None),
    ('{"type": "join", "userAgent": "\\u0085"}', None),  # C1 controls are not refused: only C0 and DEL
    ('{"type": "join", "\\u0000": 1}', "\\u0000: must not contain NUL (U+0000)"),
    ('{"type": "chat", "text": "a\\\\u0000"}', None),  # an escaped backslash, then u0000: plain text
])
def test_parse_client_message(text: str, message: str | None) -> None:
    if message is None:
        p.parse_client_message(text)
        return
    with pytest.raises(p.ProtocolError) as refused:
        p.parse_client_message(text)
    assert refused.value.code == p.ErrorCode.MALFORMED and refused.value.message == message
