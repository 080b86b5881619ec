"""Image checks, built-in backgrounds and the resolved RoomTheme, without a server."""

from __future__ import annotations

import asyncio
import io
import struct
import threading
import time
import zlib

import pytest
from PIL import ExifTags, Image, ImageFile, PngImagePlugin

from herewith.errors import BadRequest, PayloadTooLarge
from herewith.theming import images
from herewith.theming.images import (
    MAX_BYTES,
    MAX_CONCURRENT_DECODES,
    MAX_PIXELS,
    MAX_SIDE,
    check_image,
    check_upload,
    default_logo,
    png_is_complete,
    preset_background,
)
from herewith.theming.presets import PALETTES, THEMES, palette_asset, theme_asset
from herewith.theming.schemas import RoomTheme
from herewith.theming.service import normalize_room_name, resolve
from tests.rooms.theme_helpers import bomb_png, image_bytes, jpeg, noise_png, png


def test_png_and_jpeg_accepted_by_content():
    a = check_image(png((400, 100)), "logo")
    assert (a.format, a.width, a.height, a.media_type) == ("png", 400, 100, "image/png")
    b = check_image(jpeg((1400, 700)), "room-background")
    assert (b.format, b.width, b.media_type) == ("jpeg", 1400, "image/jpeg")
    assert len(a.sha256) == 64 and a.sha256 != b.sha256


@pytest.mark.parametrize("fmt,mode", [("GIF", "P"), ("BMP", "RGB"), ("TIFF", "RGB"), ("WEBP", "RGB"),
                                      ("ICO", "RGBA"), ("PPM", "RGB")])
def test_other_formats_refused_naming_them(fmt, mode):
    with pytest.raises(BadRequest) as err:
        check_image(image_bytes(fmt, (32, 32), mode=mode), "logo")
    assert err.value.data == {"image": err.value.data["image"]}
    assert "PNG or JPEG only" in err.value.message


@pytest.mark.parametrize("data", [b"GIF89a" + b"\0" * 10, b"%PDF-1.4 hello", b"\x89PNG\r\n\x1a\n" + b"\0" * 40,
                                  b"\xff\xd8\xff\xe0garbage", b"<svg/>"])
def test_garbage_refused(data):
    with pytest.raises(BadRequest) as err:
        check_image(data, "logo")
    assert "image" in err.value.data


def test_truncated_images_refused():
    for data in (noise_png((200, 200)), image_bytes("JPEG", (300, 300))):
        with pytest.raises(BadRequest) as err:
            check_image(data[: len(data) // 2], "logo")
        assert "image" in err.value.data


def test_png_cut_anywhere_is_refused():
    # Pillow alone accepts a PNG cut inside the zlib trailer or the CRC of its last IDAT, or without IEND,
    # once every row inflated.
    data = png((400, 100))
    assert png_is_complete(data)
    for cut in range(8, len(data)):
        with pytest.raises(BadRequest) as err:
            check_image(data[:cut], "logo")
        assert "image" in err.value.data, cut
        assert not png_is_complete(data[:cut])


def test_png_with_a_bad_crc_is_refused():
    data = bytearray(png((40, 10)))
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4:idat])[0]
    data[idat + 4 + length] ^= 0xFF  # first CRC byte of the IDAT chunk
    with pytest.raises(BadRequest) as err:
        check_image(bytes(data), "logo")
    assert "truncated or corrupt" in err.value.data["image"]


def test_empty_refused():
    with pytest.raises(BadRequest):
        check_image(b"", "logo")


@pytest.mark.parametrize("size", [(20_000, 20_000), (10_000, 2_500), (6_000, 6_000), (4_096, 4_096),
                                  (4_097, 10), (10, 4_097)])
def test_pixel_limits_refuse_bombs_before_decoding(size, monkeypatch):
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.size))
    bomb = bomb_png(*size)
    assert len(bomb) < 600 * 1024
    with pytest.raises(BadRequest) as err:
        check_image(bomb, "room-background", field="image")
    assert "too large" in err.value.data["image"] and f"at most {MAX_SIDE} pixels a side" in err.value.message
    assert decoded == []  # refused from the header: no pixel was decoded


def test_largest_accepted_image():
    w, h = MAX_SIDE, MAX_PIXELS // MAX_SIDE
    checked = check_image(bomb_png(w, h), "room-background")
    assert (checked.width, checked.height) == (w, h)
    with Image.open(io.BytesIO(checked.data)) as img:
        assert img.size == (w, h)


def test_pillow_limits_are_lowered_too():
    assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS
    assert PngImagePlugin.MAX_TEXT_CHUNK <= 256 * 1024 and PngImagePlugin.MAX_TEXT_MEMORY <= 1024 * 1024


def test_byte_limits():
    big = noise_png((480, 480))
    assert len(big) > 600 * 1024
    for kind in ("logo", "room-background", "room-knock-page-background"):
        assert MAX_BYTES[kind] == 600 * 1024
        with pytest.raises(PayloadTooLarge) as err:
            check_image(big, kind)
        assert err.value.status == 413 and err.value.data["maxBytes"] == 600 * 1024 and "image" in err.value.data
    assert check_image(noise_png((400, 400)), "logo").format == "png"


# ---- what is stored: the pixels re-encoded, nothing else ----------------------------------------------------

def pixels(data: bytes) -> tuple[tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size, img.convert("RGBA").tobytes()


def test_trailing_data_is_not_kept():
    original = png((120, 40))
    data = original + b"<html><body><script>alert(document.domain)</script></body></html>"
    checked = check_image(data, "logo")
    assert b"<html" not in checked.data and b"script" not in checked.data
    assert checked.data.endswith(b"IEND\xaeB`\x82") and png_is_complete(checked.data)
    assert pixels(checked.data) == pixels(original)
    jpg = jpeg((120, 40))
    checked = check_image(jpg + b"<html>", "logo")
    assert b"<html" not in checked.data and checked.data.endswith(b"\xff\xd9")


def test_metadata_is_not_kept():
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>alert(1)</script>")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>secret location</x:xmpmeta>")
    out = io.BytesIO()
    Image.new("RGBA", (30, 20), (1, 2, 3, 128)).save(out, "PNG", pnginfo=info, icc_profile=b"\0" * 200)
    checked = check_image(out.getvalue(), "logo")
    assert b"script" not in checked.data and b"xmpmeta" not in checked.data
    for chunk in (b"tEXt", b"iTXt", b"zTXt", b"iCCP", b"eXIf"):
        assert chunk not in checked.data
    assert pixels(checked.data) == pixels(out.getvalue())

    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif[ExifTags.Base.ImageDescription] = "home address"
    out = io.BytesIO()
    Image.new("RGB", (64, 32), (30, 160, 60)).save(out, "JPEG", exif=exif, comment=b"a comment")
    checked = check_image(out.getvalue(), "room-background")
    assert b"PhoneCo" not in checked.data and b"a comment" not in checked.data and b"Exif" not in checked.data
    with Image.open(io.BytesIO(checked.data)) as img:
        assert img.format == "JPEG" and img.size == (64, 32) and not img.getexif()


def test_exif_orientation_is_applied_to_the_pixels():
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # rotate 90 degrees clockwise to display
    out = io.BytesIO()
    Image.new("RGB", (60, 30), (200, 30, 60)).save(out, "JPEG", exif=exif)
    checked = check_image(out.getvalue(), "logo")
    assert (checked.width, checked.height) == (30, 60)
    with Image.open(io.BytesIO(checked.data)) as img:
        assert img.size == (30, 60) and ExifTags.Base.Orientation not in img.getexif()


def test_png_transparency_is_kept():
    img = Image.new("P", (16, 16), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    out = io.BytesIO()
    img.save(out, "PNG", transparency=1)
    checked = check_image(out.getvalue(), "logo")
    with Image.open(io.BytesIO(checked.data)) as back:
        assert back.convert("RGBA").getpixel((3, 3))[3] == 0


def test_only_two_decodes_at_a_time(monkeypatch):
    running, most = 0, 0
    lock = threading.Lock()

    def slow_check(data, kind, field="image"):  # noqa: ANN001, ANN202
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return kind

    monkeypatch.setattr(images, "check_image", slow_check)

    async def many() -> list:
        return await asyncio.gather(*(check_upload(b"x", "logo") for _ in range(8)))

    assert asyncio.run(many()) == ["logo"] * 8
    assert MAX_CONCURRENT_DECODES == 2 and most == 2


def test_builtin_assets_are_real_images():
    for name in PALETTES:
        with Image.open(palette_asset(name)) as img:
            assert img.format == "PNG"
    for name in THEMES:
        with Image.open(theme_asset(name)) as img:
            assert img.format == "PNG" and img.mode == "RGBA" and img.size == (1600, 900)
    with Image.open(io.BytesIO(default_logo())) as img:
        assert img.format == "PNG" and img.width >= 400
    with Image.open(io.BytesIO(preset_background("purple", "mountains"))) as img:
        assert img.format == "JPEG" and img.size == (1600, 900)
        # the palette shows at the top, the mountains darken the bottom
        top, bottom = img.getpixel((800, 5)), img.getpixel((800, 890))
        assert sum(top) > sum(bottom)
    assert preset_background("grey", "default") != preset_background("burgund", "default")


def test_room_theme_defaults_and_css():
    theme = resolve("/room-1", None)
    assert theme.logo_url == "/themes/logo-default.png"
    assert theme.room_background_url == theme.knock_background_url == "/themes/presets/default/default.jpg"
    css = theme.css_declarations()
    assert f"--herewith-primary: {theme.primary}" in css and "<" not in css
    assert RoomTheme("#ffff00", "#000000", "#000000", "a", "b", "c").on_primary == "#000000"
    assert RoomTheme("#101060", "#000000", "#000000", "a", "b", "c").on_primary == "#ffffff"


def test_room_names_from_paths():
    assert normalize_room_name("abc") == normalize_room_name("/abc") == normalize_room_name("//abc") == "/abc"
    for bad in ("", "/", "a/b", "x" * 100):
        with pytest.raises(Exception):
            normalize_room_name(bad)


def test_theming_paths_and_enums_match_the_vendor_spec(tmp_path):
    from herewith.app import create_app
    from herewith.config import Settings
    from herewith.theming.schemas import BackgroundPresetRequest, LogoResetRequest, ThemeTokensRequest
    from tests.support.contract import spec

    ours = create_app(Settings(data_dir=tmp_path)).openapi()["paths"]
    theirs = {p: v for p, v in spec()["paths"].items() if "/theme/" in p}
    assert len(theirs) == 4
    for path, ops in theirs.items():
        assert set(ops) == {"put"}
        mine = ours["/v1" + path]["put"]
        assert set(mine["requestBody"]["content"]) == set(ops["put"]["requestBody"]["content"]), path
        assert "204" in mine["responses"]
        body = ops["put"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
        if path.endswith("/tokens"):
            for preset in body["tokensPreset"]["enum"]:
                ThemeTokensRequest.model_validate({"tokensPreset": preset})
        elif path.endswith("/logo"):
            for value in body["theme"]["enum"]:
                LogoResetRequest.model_validate({"theme": value})
        else:
            for palette in body["palette"]["enum"]:
                for theme in body["theme"]["enum"]:
                    BackgroundPresetRequest.model_validate({"palette": palette, "theme": theme})
            assert set(body["palette"]["enum"]) == set(PALETTES) and set(body["theme"]["enum"]) == set(THEMES)
