"""Image checks, built-in backgrounds and the resolved RoomTheme, without a server."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from herewith.errors import BadRequest, PayloadTooLarge
from herewith.theming.images import MAX_BYTES, check_image, default_logo, preset_background
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


def test_empty_refused():
    with pytest.raises(BadRequest):
        check_image(b"", "logo")


@pytest.mark.parametrize("size", [(20_000, 20_000), (6_000, 6_000), (10_001, 10), (10, 10_001)])
def test_pixel_limits_refuse_bombs_before_decoding(size):
    with pytest.raises(BadRequest) as err:
        check_image(bomb_png(*size), "room-background", field="image")
    assert "too large" in err.value.data["image"]


def test_byte_limits():
    big = noise_png((480, 480))
    assert MAX_BYTES["room-background"] < len(big) < MAX_BYTES["logo"]
    for kind in ("room-background", "room-knock-page-background"):
        with pytest.raises(PayloadTooLarge) as err:
            check_image(big, kind)
        assert err.value.status == 413 and err.value.data["maxBytes"] == 600 * 1024
    assert check_image(big, "logo").format == "png"


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
