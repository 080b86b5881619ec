"""Image checks and built-in backgrounds of room theming (CONTRACT.md, "Room theming").

Uploaded images are judged by decoding them with Pillow, never by their file name or declared type:

- a byte limit per kind (:data:`MAX_BYTES`, 413 beyond): backgrounds at most 600 kB (the contract), logos too;
- PNG and JPEG only (another format, however well-formed, is a 400 naming the field);
- at most :data:`MAX_SIDE` pixels a side and :data:`MAX_PIXELS` pixels, checked from the header *before*
  the pixels are decoded, so a small file that inflates to hundreds of megabytes (a decompression bomb) is
  refused without allocating it (a 97 kB PNG of 10000x2500 decodes to 100 MB). Pillow's own bomb check
  (``Image.MAX_IMAGE_PIXELS``) and PNG text-chunk limits are lowered to match, as a second line;
- a PNG must be a whole chunk stream (every chunk's length within the file, CRCs right, ``IEND`` present),
  and the pixels are fully decoded once (:meth:`PIL.Image.Image.load`), so a truncated or corrupt file is
  a 400;
- what is kept is a **re-encoding** of the decoded pixels (PNG stays PNG, JPEG stays JPEG), never the
  upload as sent: data after the image's end (a PNG with HTML appended), text chunks, EXIF, XMP, comments,
  ICC profiles and extra frames (APNG, MPO) are dropped. EXIF orientation is applied to the pixels first.

Decoding holds up to ``MAX_PIXELS * 4`` bytes (32 MiB) per image and takes up to a few hundred ms: call
:func:`check_image` from a bounded pool (``herewith.theming.endpoints`` runs two at a time).

Usage::

    checked = check_image(data, "room-background")   # raises BadRequest / PayloadTooLarge
    jpeg = preset_background("purple", "mountains")  # bytes of the built-in picture
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import hashlib
import io
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

from PIL import ExifTags, Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from herewith.errors import BadRequest, PayloadTooLarge, validation_error
from herewith.theming.presets import BACKGROUND_SIZE, DEFAULT_LOGO, palette_asset, theme_asset

KB = 1024
MAX_BYTES: dict[str, int] = {
    "logo": 600 * KB,  # not in the contract: as the backgrounds; the page shows a logo at most 120x28 px
    "room-background": 600 * KB,  # contract: "max 600 kb"
    "room-knock-page-background": 600 * KB,
}
MAX_SIDE = 4096  # pixels, width or height
MAX_PIXELS = 8 * 1024 * 1024  # width * height: 3840x2160 fits; 32 MiB decoded (Pillow keeps RGB as 4 bytes)

# Pillow's own limits, process-wide: a warning past MAX_IMAGE_PIXELS (ignored here: the check below names the
# size), DecompressionBombError past twice that, before any pixel is decoded; PNG text and ICC chunks are
# inflated at open, each at most MAX_TEXT_CHUNK and all together MAX_TEXT_MEMORY.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
PngImagePlugin.MAX_TEXT_CHUNK = 256 * KB
PngImagePlugin.MAX_TEXT_MEMORY = 1024 * KB
FORMATS = {"PNG": "png", "JPEG": "jpeg", "MPO": "jpeg"}  # MPO: a JPEG with extra pictures (phone cameras)
MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}
EXTENSIONS = {"png": "png", "jpeg": "jpg"}


@dataclass(frozen=True)
class CheckedImage:
    """An image that passed :func:`check_image`: the bytes to store (the decoded pixels re-encoded, not the
    upload), ``format`` ``png`` | ``jpeg``, size in pixels and the hex SHA-256 of those bytes."""

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
    ``room-knock-page-background``); the result holds the pixels re-encoded, not ``data``.

    Raises :class:`~herewith.errors.PayloadTooLarge` (413) over :data:`MAX_BYTES`, and a 400 naming
    ``field`` when it is empty, not PNG/JPEG, larger than :data:`MAX_SIDE`/:data:`MAX_PIXELS` (checked
    before decoding), truncated or otherwise not decodable. Blocks: see the module docstring.
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
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size check below says more
            img = Image.open(io.BytesIO(data), formats=["PNG", "JPEG"])  # the header only
    except UnidentifiedImageError:
        other = _describe_other(data)
        if other is not None:
            raise validation_error(field, f"{other} images are not accepted: PNG or JPEG only") from None
        raise validation_error(field, "is not a decodable image (PNG or JPEG)") from None
    except Image.DecompressionBombError:
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
        if fmt == "png" and not png_is_complete(data):
            raise validation_error(field, "could not be decoded (truncated or corrupt PNG)")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img.load()
        except Exception:  # noqa: BLE001 - truncated/corrupt data: OSError, SyntaxError, ValueError, ...
            raise validation_error(field, "could not be decoded (truncated or corrupt image)") from None
        try:
            out, width, height = _reencode(img, fmt)
        except Exception:  # noqa: BLE001 - a mode or parameter Pillow cannot write back: the image is refused
            raise validation_error(field, "could not be decoded (unsupported PNG or JPEG variant)") from None
    return CheckedImage(data=out, format=fmt, width=width, height=height, sha256=hashlib.sha256(out).hexdigest())


#: Uploads decoded at once in this process, at most: each holds up to ``MAX_PIXELS * 4`` bytes while it
#: decodes. The others wait in order; one whose client went away leaves the queue unstarted.
MAX_CONCURRENT_DECODES = 2
_decode_pool = ThreadPoolExecutor(max_workers=MAX_CONCURRENT_DECODES, thread_name_prefix="herewith-image")


async def check_upload(data: bytes, kind: str, field: str = "image") -> CheckedImage:
    """:func:`check_image` on the decoding pool (:data:`MAX_CONCURRENT_DECODES` threads shared by every event
    loop of the process), awaited without blocking the loop. Same result and errors as :func:`check_image`.

    A pool of its own rather than ``asyncio.to_thread`` under a semaphore: it bounds the decodes and also the
    threads that ever decode (each thread's malloc arena keeps memory after it), and an asyncio semaphore
    belongs to one event loop while tests run several servers in one process.
    """
    return await asyncio.get_running_loop().run_in_executor(_decode_pool, _check_and_trim, data, kind, field)


def _find_malloc_trim():  # noqa: ANN202 - ctypes function or None
    """glibc's ``malloc_trim``, or None elsewhere (musl). A decode's tens of MB go back to malloc's arenas when
    freed, and glibc keeps them: 8 parallel 4096x2048 uploads left the server 35 MB larger without a trim
    after each decode, and at its starting size with it."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_libc_malloc_trim = _find_malloc_trim()


def _check_and_trim(data: bytes, kind: str, field: str) -> CheckedImage:
    try:
        return check_image(data, kind, field)
    finally:
        if _libc_malloc_trim is not None:
            _libc_malloc_trim(0)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_is_complete(data: bytes) -> bool:
    """Whether ``data`` is a whole PNG chunk stream: the signature, then chunks whose length fits in the
    file and whose CRC matches, up to ``IEND`` (PNG specification, section 5). Bytes after ``IEND`` are
    allowed (they are dropped by the re-encoding). Pillow alone accepts a PNG cut inside its last ``IDAT``
    chunk or missing ``IEND`` once every row inflated."""
    view = memoryview(data)
    if bytes(view[:8]) != PNG_SIGNATURE:
        return False
    pos, size = 8, len(data)
    while pos + 12 <= size:
        length = int.from_bytes(view[pos:pos + 4], "big")
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > size:
            return False
        if zlib.crc32(view[pos + 4:end - 4]) != int.from_bytes(view[end - 4:end], "big"):
            return False
        if bytes(view[pos + 4:pos + 8]) == b"IEND":
            return True
        pos = end
    return False


def _reencode(img: Image.Image, fmt: str) -> tuple[bytes, int, int]:
    """The loaded ``img`` written afresh as ``fmt`` (``png`` | ``jpeg``), EXIF orientation applied and
    nothing but the pixels (and a PNG's transparency) kept; returns the bytes, width and height."""
    if img.getexif().get(ExifTags.Base.Orientation, 1) in range(2, 9):
        img = ImageOps.exif_transpose(img)
    transparency = img.info.get("transparency") if fmt == "png" else None
    img.info = {}  # text chunks, EXIF, XMP, ICC profile, comments: none is written back
    out = io.BytesIO()
    if fmt == "png":
        img.save(out, "PNG", compress_level=6, **({"transparency": transparency} if transparency is not None else {}))
    else:
        keep = img.format == "JPEG" and img.mode in ("L", "RGB")  # same tables and sampling: a like size
        if img.mode not in ("L", "RGB"):
            img = img.convert("RGB")  # CMYK and others: browsers show RGB alike
        if keep:
            img.save(out, "JPEG", quality="keep", optimize=True)
        else:
            img.save(out, "JPEG", quality=90, optimize=True)
    return out.getvalue(), img.width, img.height


def _too_many_pixels(field: str, width: int | None = None, height: int | None = None) -> BadRequest:
    size = f"{width}x{height} pixels is" if width is not None else "is"
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
