"""``GET /embed.js``: the ``<herewith-embed>`` module, fetchable by pages of any origin (CORS), as JavaScript,
not taken for a room name by ``/{roomName}``; the room page links the embedding stylesheet and bridge."""

from __future__ import annotations

import httpx

from tests.support.servers import ThreadServer


async def test_embed_script_is_a_cors_module(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as web:
        r = await web.get("/embed.js", headers={"Origin": "https://app.example.com"})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/javascript")
        assert r.headers["access-control-allow-origin"] == "*"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "customElements.define('herewith-embed'" in r.text
        assert "export class HerewithEmbed" in r.text
        head = await web.head("/embed.js")
        assert head.status_code == 200 and head.content == b""
        # the page's side of embedding is served with the other static files
        for name in ("embed-bridge.js", "embed.css"):
            assert (await web.get(f"/room-static/{name}")).status_code == 200, name
