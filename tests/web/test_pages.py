"""The room page over HTTP (SQLite and PostgreSQL): 200 for a live room, 404 unknown, 410 deleted or expired,
400 for URL parameters the contract forbids; static files served locally; nothing from a CDN."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import httpx

from tests.signaling.helpers import create_meeting
from tests.support.servers import ThreadServer


def config_of(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="herewith-config">(.*?)</script>', html, re.S)
    assert match, html[:500]
    return json.loads(match.group(1))


async def test_room_page_statuses(server: ThreadServer, client: httpx.AsyncClient) -> None:
    m = await create_meeting(client, isLocked=True)
    async with httpx.AsyncClient(base_url=server.base_url) as web:
        r = await web.get(m["roomUrl"] + "?displayName=Ann%20Lee&externalId=u-1&metadata=x")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        cfg = config_of(r.text)
        assert cfg["roomName"] == m["roomName"] and cfg["displayName"] == "Ann Lee" and cfg["externalId"] == "u-1"
        assert cfg["signalUrl"] == "/signal" + m["roomName"] and cfg["locked"] is True and cfg["roomMode"] == "normal"
        # everything the page loads comes from this server
        for ref in re.findall(r'(?:src|href)="([^"]+)"', r.text):
            assert ref.startswith("/") or ref.startswith("data:"), ref
        for path in re.findall(r'(?:src|href)="(/room-static/[^"?]+)', r.text):
            assert (await web.get(path)).status_code == 200
        for module in ("app.js", "mesh.js", "signaling.js", "localmedia.js", "stats.js"):
            js = await web.get(f"/room-static/{module}")
            assert js.status_code == 200 and "javascript" in js.headers["content-type"]
            assert "http://" not in js.text and "https://" not in js.text

        assert (await web.head(m["roomUrl"])).status_code == 200
        assert (await web.get("/no-such-room")).status_code == 404
        assert "Room not found" in (await web.get("/no-such-room")).text
        for bad in ("displayName=a%3Cb", "displayName=" + "x" * 101, "externalId=bad%20id", "metadata=" + "m" * 1001):
            r = await web.get(m["roomUrl"] + "?" + bad)
            assert r.status_code == 400, bad
        # the API and health are not shadowed by /{roomName}
        assert (await web.get("/healthz")).json()["status"] == "ok"
        assert (await web.get("/v1/meetings")).status_code == 401

        assert (await client.delete(f"/meetings/{m['meetingId']}")).status_code == 204
        r = await web.get(m["roomUrl"])
        assert r.status_code == 410 and "This meeting is over" in r.text and "deleted" in r.text

        m2 = await create_meeting(client, endDate=(server.clock.now() + timedelta(minutes=1)).isoformat())
        assert (await web.get(m2["roomUrl"])).status_code == 200
        server.clock.advance(2 * 3600)  # one hour after endDate the room is deactivated
        try:
            r = await web.get(m2["roomUrl"])
            assert r.status_code == 410 and "expired" in r.text
        finally:
            server.clock.advance(-2 * 3600)


CRAFTED_METADATA = [
    "<!--<script>",
    "</script><script>alert(1)</script>",
    "</SCRIPT ><img src=x onerror=alert(1)>",
    "a & b > c <!-- d --> \u2028\u2029 \"quoted\" 'single' \\ back",
]


async def test_crafted_link_cannot_break_the_page(server: ThreadServer, client: httpx.AsyncClient) -> None:
    """``metadata`` (any text up to 1000 characters, passed through) is embedded in the page as JSON: it comes
    back unchanged and cannot end the JSON's <script> element or turn the ones after it into its text."""
    m = await create_meeting(client)
    async with httpx.AsyncClient(base_url=server.base_url) as web:
        for metadata in CRAFTED_METADATA:
            r = await web.get(m["roomUrl"], params={"metadata": metadata})
            assert r.status_code == 200, metadata
            start = r.text.index('<script type="application/json" id="herewith-config">') + 53
            end = r.text.index("</script>", start)
            embedded = r.text[start:end]
            assert json.loads(embedded)["metadata"] == metadata
            # HTML's rules for script text: no "<!--", "<script" or "</script" in any case (the first two
            # would make the parser skip the next "</script>" and swallow the app.js tag)
            for marker in ("<!--", "<script", "</script", "<", ">", "&", "\u2028", "\u2029"):
                assert marker not in embedded.lower(), (metadata, marker)
            after = r.text[end + len("</script>"):].lstrip()
            assert re.match(r'<script type="module" src="/room-static/app\.js\?v=[^"]+"></script>', after), after[:200]
