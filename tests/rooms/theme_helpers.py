"""Images for theming tests, built with Pillow in memory."""

from __future__ import annotations

import io
import os
import struct
import zlib

from PIL import Image


def image_bytes(fmt: str, size: tuple[int, int] = (64, 32), color: tuple[int, int, int] = (200, 30, 60),
                mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color if mode != "1" else 0).save(out, fmt)
    return out.getvalue()


def png(size: tuple[int, int] = (64, 32), color: tuple[int, int, int] = (200, 30, 60)) -> bytes:
    return image_bytes("PNG", size, color)


def jpeg(size: tuple[int, int] = (64, 32), color: tuple[int, int, int] = (30, 160, 60)) -> bytes:
    return image_bytes("JPEG", size, color)


def noise_png(size: tuple[int, int]) -> bytes:
    """A PNG that does not compress: about width*height*3 bytes."""
    out = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(out, "PNG", compress_level=1)
    return out.getvalue()


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit PNG of ``width`` x ``height`` black pixels: a few kB of file that decodes to up to
    hundreds of megapixels (a decompression bomb). Written by hand (Pillow would allocate the image)."""
    row = b"\x00" + bytes((width + 7) // 8)  # filter "none" + packed bits
    z = zlib.compressobj(9)
    chunk = row * max(1, (1 << 20) // len(row))
    rows_per_chunk = len(chunk) // len(row)
    parts, left = [], height
    while left > 0:
        n = min(left, rows_per_chunk)
        parts.append(z.compress(chunk[: n * len(row)]))
        left -= n
    parts.append(z.flush())

    def chunk_of(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk_of(b"IHDR", ihdr) + chunk_of(b"IDAT", b"".join(parts)) + chunk_of(b"IEND", b"")
