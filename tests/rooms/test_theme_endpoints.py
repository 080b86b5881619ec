"""The four theming calls against a real server, on SQLite and PostgreSQL (CONTRACT.md, "Room theming"),
and the public ``/themes/*`` images they produce."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from PIL import Image

from herewith.theming.presets import DEFAULT_COLORS
from herewith.theming.schemas import RoomTheme
from herewith.theming.service import get_room_theme
from tests.rooms.theme_helpers import bomb_png, image_bytes, jpeg, noise_png, png

FUTURE = "2099-02-18T14:23:00.000Z"
CONTENT_TYPE_ERROR = "Content-Type must be multipart/form-data or application/json"
IMAGE_CALLS = ("logo", "room-background", "room-knock-page-background")
ALL_CALLS = ("tokens",) + IMAGE_CALLS


async def new_room(client: httpx.AsyncClient) -> str:
    """A fresh meeting's roomName without its leading slash."""
    r = await client.post("/meetings", json={"endDate": FUTURE})
    assert r.status_code == 201, r.text
    return r.json()["roomName"].lstrip("/")


async def room_theme(server, room: str) -> RoomTheme:  # noqa: ANN001
    async def read() -> RoomTheme:
        async with server.services.sessionmaker() as session:
            return await get_room_theme(session, room)

    return await asyncio.to_thread(server.run_coro, read())


def upload(data: bytes, filename: str = "image.png", content_type: str = "image/png") -> dict:
    return {"files": {"image": (filename, data, content_type)}}


def pixels(data: bytes) -> tuple[str | None, tuple[int, int], bytes]:
    """Format, size and RGBA pixels of an image: what re-encoding must keep."""
    with Image.open(io.BytesIO(data)) as img:
        return img.format, img.size, img.convert("RGBA").tobytes()


def peak_rss_mb() -> int:
    """This process's peak resident memory since :func:`reset_peak_rss`, in MB (Linux)."""
    return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) // 1024


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS


def assert_error(r: httpx.Response, status: int, field: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body["error"], str) and body["error"]
    if field is not None:
        assert field in body["data"], body
    return body


# ---- tokens --------------------------------------------------------------------------------------------

async def test_tokens_custom_then_default(client, server):
    room = await new_room(client)
    assert (await room_theme(server, room)).primary == DEFAULT_COLORS["primary"]
    r = await client.put(f"/rooms/{room}/theme/tokens", json={
        "tokens": {"colors": {"primary": "#FF0066", "secondary": "#00ff00", "focus": "#123abc"}},
        "tokensPreset": "custom",
    })
    assert r.status_code == 204, r.text
    assert r.content == b""
    theme = await room_theme(server, room)
    assert (theme.primary, theme.secondary, theme.focus) == ("#ff0066", "#00ff00", "#123abc")
    assert theme.css_variables()["--herewith-primary"] == "#ff0066"

    # custom with only one colour: the others are Herewith's defaults
    r = await client.put(f"/rooms/{room}/theme/tokens", json={"tokens": {"colors": {"focus": "#000000"}},
                                                             "tokensPreset": "custom"})
    assert r.status_code == 204
    theme = await room_theme(server, room)
    assert (theme.primary, theme.focus) == (DEFAULT_COLORS["primary"], "#000000")

    # "default" (or no preset at all) means the defaults, whatever colours come along
    for body in ({"tokensPreset": "default", "tokens": {"colors": {"primary": "#111111"}}},
                 {"tokens": {"colors": {"primary": "#111111"}}}):
        r = await client.put(f"/rooms/{room}/theme/tokens", json=body)
        assert r.status_code == 204
        assert (await room_theme(server, room)).primary == DEFAULT_COLORS["primary"]


@pytest.mark.parametrize("bad", ["red", "#12345", "#1234567", "#GGGGGG", "123456", "", 42, None])
async def test_tokens_bad_colour_is_400_naming_it(client, bad):
    room = await new_room(client)
    body = {"tokens": {"colors": {"primary": "#ffffff", "secondary": bad}}, "tokensPreset": "custom"}
    if bad is None:
        body["tokens"]["colors"]["secondary"] = None  # explicit null = "not given": accepted
        r = await client.put(f"/rooms/{room}/theme/tokens", json=body)
        assert r.status_code == 204
        return
    r = await client.put(f"/rooms/{room}/theme/tokens", json=body)
    data = assert_error(r, 400, "tokens.colors.secondary")["data"]
    assert "#RRGGBB" in data["tokens.colors.secondary"] or "string" in data["tokens.colors.secondary"]


async def test_tokens_bad_shapes_are_400(client):
    room = await new_room(client)
    assert_error(await client.put(f"/rooms/{room}/theme/tokens", json={"tokensPreset": "fancy"}), 400, "tokensPreset")
    assert_error(await client.put(f"/rooms/{room}/theme/tokens", json={"tokens": "blue"}), 400, "tokens")
    assert_error(await client.put(f"/rooms/{room}/theme/tokens", json=["custom"]), 400, "body")
    assert_error(await client.put(f"/rooms/{room}/theme/tokens", content=b"{not json",
                                  headers={"Content-Type": "application/json"}), 400, "body")
    # tokens have no multipart form
    assert_error(await client.put(f"/rooms/{room}/theme/tokens", **upload(png())), 400, "body")


# ---- content type ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("call", ALL_CALLS)
async def test_other_content_types_are_400(client, call):
    room = await new_room(client)
    for headers, content in [({"Content-Type": "text/plain"}, b"hello"),
                             ({"Content-Type": "application/x-www-form-urlencoded"}, b"theme=default"),
                             ({"Content-Type": "image/png"}, png()),
                             ({}, b"")]:
        r = await client.put(f"/rooms/{room}/theme/{call}", content=content, headers=headers)
        assert r.status_code == 400, (headers, r.text)
        assert r.json()["error"] == CONTENT_TYPE_ERROR


# ---- logo ------------------------------------------------------------------------------------------------

async def test_logo_upload_is_served_with_etag_and_reset(client, server, settings):
    room = await new_room(client)
    data = png((400, 100), (10, 20, 200))
    r = await client.put(f"/rooms/{room}/theme/logo", **upload(data, "logo.png"))
    assert r.status_code == 204, r.text
    theme = await room_theme(server, room)
    assert theme.logo_url.startswith(f"/themes/rooms/{room}/logo?v=")

    async with httpx.AsyncClient(base_url=server.base_url) as public:  # no Authorization: room pages need it
        got = await public.get(theme.logo_url)
        assert got.status_code == 200
        assert pixels(got.content) == pixels(data)  # the pixels re-encoded (see test_appended_data_...)
        assert got.headers["content-type"] == "image/png"
        assert got.headers["x-content-type-options"] == "nosniff"
        etag = got.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"')
        assert "immutable" in got.headers["cache-control"]  # the versioned URL never changes content
        head = await public.head(theme.logo_url)
        assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == got.headers["etag"]

        again = await public.get(theme.logo_url, headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert (await public.get(theme.logo_url, headers={"If-None-Match": f'"x", W/{etag}'})).status_code == 304
        assert (await public.get(theme.logo_url, headers={"If-None-Match": '"other"'})).status_code == 200

        unversioned = await public.get(f"/themes/rooms/{room}/logo")
        assert unversioned.status_code == 200 and unversioned.content == got.content
        assert "no-cache" in unversioned.headers["cache-control"]

        files = list((settings.data_dir / "themes").rglob("logo.*.png"))
        assert len(files) == 1 and files[0].read_bytes() == got.content

        # reset: back to Herewith's logo, the uploaded file is gone
        r = await client.put(f"/rooms/{room}/theme/logo", json={"theme": "default"})
        assert r.status_code == 204, r.text
        theme = await room_theme(server, room)
        assert theme.logo_url == "/themes/logo-default.png"
        assert not files[0].exists()
        default = await public.get(theme.logo_url)
        assert default.status_code == 200 and default.headers["content-type"] == "image/png"
        assert default.content.startswith(b"\x89PNG")
        assert (await public.get(theme.logo_url, headers={"If-None-Match": default.headers["etag"]})).status_code == 304
        now_default = await public.get(f"/themes/rooms/{room}/logo")
        assert now_default.content == default.content


async def test_logo_json_other_than_reset_is_400(client):
    room = await new_room(client)
    assert_error(await client.put(f"/rooms/{room}/theme/logo", json={"theme": "fancy"}), 400, "theme")
    assert_error(await client.put(f"/rooms/{room}/theme/logo", json={}), 400, "theme")


async def test_jpeg_is_recognised_by_content_not_by_name(client, server):
    room = await new_room(client)
    data = jpeg((500, 200))
    r = await client.put(f"/rooms/{room}/theme/logo",
                         **upload(data, "not-really.gif", "application/octet-stream"))
    assert r.status_code == 204, r.text
    theme = await room_theme(server, room)
    async with httpx.AsyncClient(base_url=server.base_url) as public:
        got = await public.get(theme.logo_url)
    assert got.headers["content-type"] == "image/jpeg"
    fmt, size, _ = pixels(got.content)
    assert (fmt, size) == ("JPEG", (500, 200))


@pytest.mark.parametrize("call", IMAGE_CALLS)
async def test_refused_images_are_400_naming_image(client, call):
    room = await new_room(client)
    url = f"/rooms/{room}/theme/{call}"
    cases = {
        "GIF": upload(image_bytes("GIF", mode="P"), "a.png", "image/png"),
        "BMP": upload(image_bytes("BMP"), "a.png", "image/png"),
        "TIFF": upload(image_bytes("TIFF"), "a.jpg", "image/jpeg"),
        "undecodable": upload(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "a.png", "image/png"),
        "truncated": upload(noise_png((100, 100))[:3000], "a.png", "image/png"),
        "cut in its last chunk": upload(png((300, 100))[:-14], "a.png", "image/png"),
        "without IEND": upload(png((300, 100))[:-12], "a.png", "image/png"),
        "empty": upload(b""),
    }
    for name, kwargs in cases.items():
        body = assert_error(await client.put(url, **kwargs), 400, "image")
        if name in ("GIF", "BMP", "TIFF"):
            assert name in body["error"] and "PNG or JPEG" in body["error"], body
    # no image part at all / image sent as a plain field
    assert_error(await client.put(url, files={"other": ("a.png", png(), "image/png")}), 400, "image")
    assert_error(await client.put(url, data={"image": "iVBORw0KGgo="},
                                  files={"x": ("x.txt", b"x", "text/plain")}), 400, "image")
    # nothing was stored
    assert (await client.put(url, **upload(png()))).status_code == 204


@pytest.mark.parametrize("size", [(20_000, 20_000), (10_000, 2_500), (6_000, 6_000), (4_097, 100)])
@pytest.mark.parametrize("call", ["logo", "room-background"])
async def test_decompression_bombs_are_refused(client, size, call):
    room = await new_room(client)
    bomb = bomb_png(*size)
    assert len(bomb) < 600 * 1024  # small enough to pass the byte limit: only the pixel check stops it
    reset_peak_rss()
    before = peak_rss_mb()
    body = assert_error(await client.put(f"/rooms/{room}/theme/{call}", **upload(bomb)), 400, "image")
    assert "too large" in body["error"]
    # refused from the header: 10000x2500 would take 100 MB decoded (one byte a pixel, 1-bit greyscale)
    assert peak_rss_mb() - before < 40


# ---- backgrounds ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("call", ["room-background", "room-knock-page-background"])
async def test_background_over_600_kb_is_413(client, call):
    room = await new_room(client)
    big = noise_png((480, 480))
    assert len(big) > 600 * 1024
    body = assert_error(await client.put(f"/rooms/{room}/theme/{call}", **upload(big)), 413, "image")
    assert body["data"]["maxBytes"] == 600 * 1024


async def test_logo_over_600_kb_is_413(client, server):
    room = await new_room(client)
    for big in (noise_png((480, 480)), noise_png((800, 800))):  # 0.7 MB and 1.9 MB
        body = assert_error(await client.put(f"/rooms/{room}/theme/logo", **upload(big)), 413, "image")
        assert body["data"]["maxBytes"] == 600 * 1024
    assert (await room_theme(server, room)).logo_url == "/themes/logo-default.png"


@pytest.mark.parametrize("call", IMAGE_CALLS)
async def test_appended_data_and_metadata_are_not_stored(client, server, settings, call):
    """The stored image is the decoded pixels written afresh: what follows the image's end (an HTML page
    that a browser sniffing the file could run) and its text chunks are gone."""
    from PIL import PngImagePlugin

    room = await new_room(client)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>alert(1)</script>")
    out = io.BytesIO()
    Image.new("RGB", (300, 100), (10, 20, 200)).save(out, "PNG", pnginfo=info)
    clean = out.getvalue()
    polyglot = clean + b"<html><body><script>alert(document.cookie)</script></body></html>"
    assert (await client.put(f"/rooms/{room}/theme/{call}", **upload(polyglot, "a.png"))).status_code == 204
    async with httpx.AsyncClient(base_url=server.base_url) as public:
        got = await public.get(f"/themes/rooms/{room}/{call}")
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert b"<html" not in got.content and b"<script" not in got.content and b"tEXt" not in got.content
    assert got.content.endswith(b"IEND\xaeB`\x82")
    assert pixels(got.content) == pixels(clean)
    stored = [p for p in (settings.data_dir / "themes").rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in stored] == [got.content]


@pytest.mark.parametrize("call,attr", [("room-background", "room_background_url"),
                                       ("room-knock-page-background", "knock_background_url")])
async def test_background_presets_and_upload(client, server, call, attr):
    room = await new_room(client)
    assert getattr(await room_theme(server, room), attr) == "/themes/presets/default/default.jpg"
    r = await client.put(f"/rooms/{room}/theme/{call}", json={"palette": "purple", "theme": "mountains"})
    assert r.status_code == 204, r.text
    url = getattr(await room_theme(server, room), attr)
    assert url == "/themes/presets/purple/mountains.jpg"
    async with httpx.AsyncClient(base_url=server.base_url) as public:
        got = await public.get(url)
        assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
        assert got.content.startswith(b"\xff\xd8") and "max-age" in got.headers["cache-control"]
        assert (await public.get(url, headers={"If-None-Match": got.headers["etag"]})).status_code == 304
        assert (await public.get("/themes/presets/neon/mountains.jpg")).status_code == 404
        # the room's own URL serves the preset too
        assert (await public.get(f"/themes/rooms/{room}/{call}")).content == got.content

        # partial JSON: the missing part is "default"
        assert (await client.put(f"/rooms/{room}/theme/{call}", json={"palette": "grey"})).status_code == 204
        assert getattr(await room_theme(server, room), attr) == "/themes/presets/grey/default.jpg"

        data = png((1400, 700), (90, 10, 40))
        assert (await client.put(f"/rooms/{room}/theme/{call}", **upload(data, "bg.png"))).status_code == 204
        url = getattr(await room_theme(server, room), attr)
        assert url.startswith(f"/themes/rooms/{room}/{call}?v=")
        assert pixels((await public.get(url)).content) == pixels(data)

    for bad in ({"palette": "pink"}, {"theme": "beach"}, {"palette": 3}):
        field = next(iter(bad))
        assert_error(await client.put(f"/rooms/{room}/theme/{call}", json=bad), 400, field)
    # the other background was not touched
    other = "knock_background_url" if attr == "room_background_url" else "room_background_url"
    assert getattr(await room_theme(server, room), other) == "/themes/presets/default/default.jpg"


# ---- which room -----------------------------------------------------------------------------------------

async def test_room_name_with_or_without_slash(client, server):
    room = await new_room(client)
    colors = {"tokens": {"colors": {"primary": "#010203"}}, "tokensPreset": "custom"}
    for path in (f"/rooms/{room}/theme/tokens", f"/rooms/{quote('/' + room, safe='')}/theme/tokens",
                 f"/rooms//{room}/theme/tokens"):
        colors["tokens"]["colors"]["primary"] = "#0102" + format(len(path) % 256, "02x")
        r = await client.put(path, json=colors)
        assert r.status_code == 204, (path, r.text)
        assert (await room_theme(server, "/" + room)).primary == colors["tokens"]["colors"]["primary"]


@pytest.mark.parametrize("call", ALL_CALLS)
async def test_foreign_unknown_and_deleted_rooms_are_404(client, server, other_org, call):
    room = await new_room(client)
    body = {"json": {"tokensPreset": "default"}} if call == "tokens" else upload(png())
    async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=other_org.headers) as other:
        r = await other.put(f"/rooms/{room}/theme/{call}", **body)
        assert_error(r, 404)
        assert r.json()["error"] == "The requested resource doesn't exist"
    assert_error(await client.put(f"/rooms/no-such-room/theme/{call}", **body), 404)
    assert_error(await client.put(f"/rooms/a/b/theme/{call}", **body), 404)

    meeting_id = (await client.get("/meetings")).json()["results"][0]["meetingId"]
    assert (await client.delete(f"/meetings/{meeting_id}")).status_code == 204
    assert_error(await client.put(f"/rooms/{room}/theme/{call}", **body), 404)
    async with httpx.AsyncClient(base_url=server.base_url) as public:
        assert (await public.get(f"/themes/rooms/{room}/logo")).status_code == 404
        assert (await public.get("/themes/rooms/no-such-room/logo")).status_code == 404


async def test_unauthenticated_is_401(server, client):
    room = await new_room(client)
    async with httpx.AsyncClient(base_url=server.base_url + "/v1") as anon:
        r = await anon.put(f"/rooms/{room}/theme/tokens", json={"tokensPreset": "default"})
    assert r.status_code == 401
    assert r.json()["error"] == "Access token is missing or invalid"


async def test_deleting_the_meeting_removes_its_files(client, server, settings):
    room = await new_room(client)
    for call in IMAGE_CALLS:
        assert (await client.put(f"/rooms/{room}/theme/{call}", **upload(png((10, 10))))).status_code == 204
    themes = settings.data_dir / "themes"
    assert len([p for p in themes.rglob("*") if p.is_file()]) == 3
    meeting_id = (await client.get("/meetings")).json()["results"][0]["meetingId"]
    assert (await client.delete(f"/meetings/{meeting_id}")).status_code == 204
    assert [p for p in themes.rglob("*") if p.is_file()] == []


async def test_deactivated_room_loses_its_files(client, server, settings):
    from datetime import timedelta

    from herewith.kit.time import format_utc

    end = server.clock.now() + timedelta(minutes=10)
    r = await client.post("/meetings", json={"endDate": format_utc(end)})
    room = r.json()["roomName"].lstrip("/")
    assert (await client.put(f"/rooms/{room}/theme/logo", **upload(png((10, 10))))).status_code == 204
    themes = settings.data_dir / "themes"
    assert len([p for p in themes.rglob("*") if p.is_file()]) == 1
    server.clock.advance((end + timedelta(hours=1, seconds=5) - server.clock.now()).total_seconds())
    for _ in range(100):  # the lifecycle sweeper deactivates the room and calls the "expired" hooks
        if not [p for p in themes.rglob("*") if p.is_file()]:
            break
        await asyncio.sleep(0.1)
    assert [p for p in themes.rglob("*") if p.is_file()] == []
