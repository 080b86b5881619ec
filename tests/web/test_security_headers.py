"""Security headers (herewith.kit.security_headers), the API docs served locally (herewith.web.api_docs) and the
room-page rate limit per client address (herewith.web.routes), against a real server on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from herewith.config import Settings
from herewith.kit.security_headers import API_POLICY, check_sources, html_policy, websocket_origin
from herewith.web.routes import client_key
from tests.signaling.helpers import create_meeting
from tests.support.servers import ThreadServer, create_org_key

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "herewith" / "web" / "templates"


def directives(policy: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *values = part.split()
        assert name not in out, policy
        out[name] = values
    return out


def assert_html_policy(r: httpx.Response, server: ThreadServer, frame_ancestors: list[str] | None = None) -> None:
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
    csp = directives(r.headers["content-security-policy"])
    assert csp["default-src"] == ["'self'"] and csp["script-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == (frame_ancestors or ["*"])
    assert "'self'" in csp["connect-src"] and f"ws://127.0.0.1:{server.port}" in csp["connect-src"]
    assert csp["img-src"] == ["'self'", "data:", "blob:"] and csp["media-src"] == ["'self'", "blob:"]
    assert not any("unsafe-eval" in v or "*" == v for name, values in csp.items() if name != "frame-ancestors"
                   for v in values)


async def test_headers_on_pages_api_and_files(server: ThreadServer, client: httpx.AsyncClient, org) -> None:  # noqa: ANN001
    m = await create_meeting(client)
    async with httpx.AsyncClient(base_url=server.base_url) as web:
        page = await web.get(m["roomUrl"])
        assert page.status_code == 200
        assert_html_policy(page, server)
        for path, status in (("/no-such-room", 404), (m["roomUrl"] + "?externalId=bad%20id", 400)):
            r = await web.get(path)
            assert r.status_code == status
            assert_html_policy(r, server)

        for r in (await web.post("/v1/meetings", headers=org.headers, json={"endDate": "2099-01-01T00:00:00Z"}),
                  await web.get("/v1/meetings"), await web.get("/healthz"), await web.get("/a/b/c"),
                  await web.get("/v1/openapi.json")):
            assert r.headers["content-type"].startswith("application/json"), r.url
            assert r.headers["content-security-policy"] == API_POLICY == "default-src 'none'; frame-ancestors 'none'"
            assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
        # a body over the cap is refused before the app: the headers are there too
        big = await web.post("/v1/meetings", headers=org.headers, content=b"x" * (server.settings.max_body_bytes + 1))
        assert big.status_code == 413 and big.headers["content-security-policy"] == API_POLICY

        js = await web.get("/room-static/app.js")
        assert js.headers["x-content-type-options"] == "nosniff" and "content-security-policy" not in js.headers
        logo = await web.get("/themes/logo-default.png")  # its own stricter policy is kept
        assert logo.headers["content-security-policy"] == "default-src 'none'; sandbox"


async def test_frame_ancestors_setting(settings: Settings) -> None:
    srv = ThreadServer(settings.model_copy(update={"frame_ancestors": ["https://app.example.com",
                                                                      "https://*.example.org"]})).start()
    try:
        async with httpx.AsyncClient(base_url=srv.base_url) as web:
            assert_html_policy(await web.get("/no-such-room"), srv, ["https://app.example.com", "https://*.example.org"])
    finally:
        srv.stop()


def test_frame_ancestors_values(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().frame_ancestors == ["*"]
    monkeypatch.setenv("HEREWITH_FRAME_ANCESTORS", "'self', https://app.example.com:8443")
    assert Settings().frame_ancestors == ["'self'", "https://app.example.com:8443"]
    for bad in ("https://a.example.com; script-src *", "'none', https://a.example.com", "https://a.example.com/x",
                "'unsafe-inline'", "", "a b"):
        monkeypatch.setenv("HEREWITH_FRAME_ANCESTORS", bad)
        with pytest.raises(ValidationError):
            Settings()
    assert check_sources(["'none'"]) == ["'none'"]
    assert websocket_origin("https://meet.example.com/base") == "wss://meet.example.com"
    assert websocket_origin("http://127.0.0.1:8080") == "ws://127.0.0.1:8080"
    assert "frame-ancestors 'none'" in html_policy(["'none'"])


def test_templates_need_no_inline_script() -> None:
    """The HTML policy has ``script-src 'self'`` without 'unsafe-inline': every <script> of the templates has a
    src or is a JSON data block, and no element carries an on* handler or a javascript: URL."""
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, (template.name, tag)
        assert not re.search(r"\son[a-z]+\s*=", text), template.name
        assert "javascript:" not in text, template.name


async def test_api_docs_are_served_from_this_server(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as web:
        r = await web.get("/v1/docs")
        assert r.status_code == 200
        assert_html_policy(r, server)
        html = r.text
        assert "cdn.jsdelivr" not in html and "unpkg" not in html and "https://" not in html and "http://" not in html
        assert "<script>" not in html  # no inline script: it would not run under script-src 'self'
        refs = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert {ref.split("?")[0] for ref in refs} == {
            "data:,", "/v1/docs/swagger-ui.css", "/v1/docs/swagger-ui-bundle.js", "/v1/docs/api-docs.js"}
        for ref in refs:
            if ref.startswith("/"):
                asset = await web.get(ref)
                assert asset.status_code == 200 and len(asset.content) > 100, ref
                assert asset.headers["x-content-type-options"] == "nosniff"
                kind = "text/css" if ref.split("?")[0].endswith(".css") else "text/javascript"
                assert asset.headers["content-type"].startswith(kind), ref
        bundle = (await web.get("/v1/docs/swagger-ui-bundle.js")).text
        assert "SwaggerUIBundle" in bundle
        starter = (await web.get("/v1/docs/api-docs.js")).text
        assert "validatorUrl: null" in starter
        assert 'data-openapi-url="/v1/openapi.json"' in html
        assert (await web.get("/v1/openapi.json")).json()["openapi"].startswith("3.")
        assert (await web.get("/v1/docs/index.html")).status_code == 404  # only the files the page needs
        assert (await web.get("/v1/docs/..%2F..%2Fconfig.py")).status_code == 404


# ---- room pages per client address --------------------------------------------------------------------

async def test_room_page_lookups_are_limited_per_address(settings: Settings) -> None:
    srv = ThreadServer(settings.model_copy(update={"room_lookup_rate_per_minute": 5})).start()
    try:
        org = await create_org_key(srv.settings)
        async with httpx.AsyncClient(base_url=srv.base_url + "/v1", headers=org.headers) as api, \
                httpx.AsyncClient(base_url=srv.base_url) as web:
            m = await create_meeting(api)
            # found or not, GET or HEAD: each is a lookup
            statuses = [(await web.get(m["roomUrl"])).status_code, (await web.get("/guess-1")).status_code,
                        (await web.head(m["roomUrl"])).status_code, (await web.get("/guess-2")).status_code,
                        (await web.get(m["roomUrl"] + "?displayName=Ann")).status_code]
            assert statuses == [200, 404, 200, 404, 200]
            for path in (m["roomUrl"], "/guess-3"):
                r = await web.get(path)
                assert r.status_code == 429, path
                assert r.headers["content-type"].startswith("text/html") and "Too many requests" in r.text
                assert 1 <= int(r.headers["retry-after"]) <= 60
                assert r.headers["cache-control"] == "no-store"
                assert "frame-ancestors" in r.headers["content-security-policy"]
            # another client (through a trusted proxy: uvicorn applies X-Forwarded-For from 127.0.0.1) is not
            # affected, and neither are the rest of the server's routes for this one
            assert (await web.get(m["roomUrl"], headers={"X-Forwarded-For": "203.0.113.7"})).status_code == 200
            assert (await web.get("/healthz")).status_code == 200
            assert (await web.get("/room-static/app.js")).status_code == 200
            assert (await web.get("/themes/logo-default.png")).status_code == 200
            assert (await web.get("/v1/docs")).status_code == 200
            assert (await api.get(f"/meetings/{m['meetingId']}")).status_code == 200
    finally:
        srv.stop()


async def test_room_page_limit_off(settings: Settings) -> None:
    srv = ThreadServer(settings.model_copy(update={"room_lookup_rate_per_minute": 0})).start()
    try:
        async with httpx.AsyncClient(base_url=srv.base_url) as web:
            assert {(await web.get(f"/guess-{i}")).status_code for i in range(80)} == {404}
    finally:
        srv.stop()


def test_client_keys() -> None:
    assert client_key("203.0.113.7") == "room-lookup:203.0.113.7"
    assert client_key("2001:db8:1:2:3:4:5:6") == client_key("2001:db8:1:2:ffff::1") == "room-lookup:2001:db8:1:2::/64"
    assert client_key("::ffff:203.0.113.7") == "room-lookup:203.0.113.7"
    assert client_key("testclient") == "room-lookup:testclient"
