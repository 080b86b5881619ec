"""Image checks and built-in backgrounds of room theming (CONTRACT.md, "Room theming").

Uploaded images are judged by decoding them with Pillow, never by their file name or declared type:

- PNG and JPEG only (another format, however well-formed, is a 400 naming the field);
- at most :data:`MAX_PIXELS` pixels and :data:`MAX_SIDE` pixels a side, checked from the header *before*
  the pixels are decoded, so a small file that inflates to gigabytes (a decompression bomb) is refused
  without allocating it;
- fully decoded once (:meth:`PIL.Image.Image.load`), so a truncated or corrupt file is a 400;
- a byte limit per kind (:data:`MAX_BYTES`): backgrounds at most 600 kB (413 beyond).

These functions block (decoding takes up to ~100 ms): call them through ``asyncio.to_thread``.

Usage::

    checked = check_image(data, "room-background")   # raises BadRequest / PayloadTooLarge
    jpeg = preset_background("purple", "mountains")  # bytes of the built-in picture
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, UnidentifiedImageError

from herewith.errors import BadRequest, PayloadTooLarge, validation_error
from herewith.theming.presets import BACKGROUND_SIZE, DEFAULT_LOGO, palette_asset, theme_asset

KB = 1024
MAX_BYTES: dict[str, int] = {
    "logo": 2048 * KB,  # not in the contract; generous for a 400+ px wide PNG
    "room-background": 600 * KB,  # contract: "max 600 kb"
    "room-knock-page-background": 600 * KB,
}
MAX_SIDE = 10_000  # pixels, width or height
MAX_PIXELS = 25_000_000  # width * height; ~100 MB decoded as RGBA
FORMATS = {"PNG": "png", "JPEG": "jpeg", "MPO": "jpeg"}  # MPO: a JPEG with extra pictures (phone cameras)
MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}
EXTENSIONS = {"png": "png", "jpeg": "jpg"}


@dataclass(frozen=True)
class CheckedImage:
    """An image that passed :func:`check_image`: the bytes as uploaded, ``format`` ``png`` | ``jpeg``,
    size in pixels and the hex SHA-256 of the bytes."""

    data: bytes
    format: str
    width: int
    height: int
    sha256: str

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


def _describe_other(data: bytes) -> str | None:
    """The format name Pillow gives ``data`` when it is an image of a refused format, else ``None``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as other:  # header only
                return other.format
    except Exception:  # noqa: BLE001 - anything Pillow cannot identify is simply "not an image"
        return None


def check_image(data: bytes, kind: str, field: str = "image") -> CheckedImage:
    """Decode ``data`` and accept it as a ``kind`` image (``logo`` | ``room-background`` |
    ``room-knock-page-background``).

    Raises :class:`~herewith.errors.PayloadTooLarge` (413) over :data:`MAX_BYTES`, and a 400 naming
    ``field`` when it is empty, not decodable, not PNG/JPEG, or has too many pixels.
    """
    limit = MAX_BYTES[kind]
    if len(data) > limit:
        raise PayloadTooLarge(
            f"Invalid {field}: {kind} images are at most {limit // KB} kB",
            data={field: f"larger than {limit // KB} kB", "maxBytes": limit},
        )
    if not data:
        raise validation_error(field, "is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=["PNG", "JPEG"])
    except UnidentifiedImageError:
        other = _describe_other(data)
        if other is not None:
            raise validation_error(field, f"{other} images are not accepted: PNG or JPEG only") from None
        raise validation_error(field, "is not a decodable image (PNG or JPEG)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(field) from None
    except Exception:  # noqa: BLE001 - a malformed header must be a 400, whatever Pillow raises
        raise validation_error(field, "is not a decodable image (PNG or JPEG)") from None
    with img:
        width, height = img.size
        if width < 1 or height < 1 or width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
            raise _too_many_pixels(field, width, height)
        fmt = FORMATS.get(img.format or "")
        if fmt is None:
            raise validation_error(field, f"{img.format} images are not accepted: PNG or JPEG only")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img.load()
        except Exception:  # noqa: BLE001 - truncated/corrupt data: OSError, SyntaxError, ValueError, ...
            raise validation_error(field, "could not be decoded (truncated or corrupt image)") from None
    return CheckedImage(data=data, format=fmt, width=width, height=height, sha256=hashlib.sha256(data).hexdigest())


def _too_many_pixels(field: str, width: int | None = None, height: int | None = None) -> BadRequest:
    size = f"{width}x{height} pixels is" if width is not None else "the image has"
    return validation_error(
        field, f"{size} too large: at most {MAX_SIDE} pixels a side and {MAX_PIXELS // 1_000_000} megapixels"
    )


@lru_cache(maxsize=32)
def preset_background(palette: str, theme: str) -> bytes:
    """The built-in background ``theme`` drawn over ``palette``: a 1600x900 JPEG (cached in memory).

    ``palette``/``theme`` must be names from :mod:`herewith.theming.presets` (validated by the caller).
    """
    with Image.open(palette_asset(palette)) as p, Image.open(theme_asset(theme)) as t:
        base = p.convert("RGBA").resize(BACKGROUND_SIZE, Image.Resampling.BICUBIC)
        picture = t.convert("RGBA")
        if picture.size != BACKGROUND_SIZE:
            picture = picture.resize(BACKGROUND_SIZE, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        Image.alpha_composite(base, picture).convert("RGB").save(out, "JPEG", quality=85, optimize=True,
                                                                 progressive=True)
    return out.getvalue()


@lru_cache(maxsize=1)
def default_logo() -> bytes:
    """The bytes of Herewith's own logo (PNG), shown when a room has no logo."""
    return DEFAULT_LOGO.read_bytes()
