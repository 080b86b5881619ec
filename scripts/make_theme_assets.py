"""Generate the built-in room theming assets into src/herewith/theming/assets/ (deterministic; commit the output).

Usage::

    .venv/bin/python scripts/make_theme_assets.py

Writes ``palette-<name>.png`` (vertical gradients, 320x180, stretched at use), ``theme-<name>.png``
(1600x900 RGBA pictures laid over a palette) and ``logo-default.png``. The names and colours come from
``herewith.theming.presets``.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from herewith.theming.presets import (  # noqa: E402
    ASSETS_DIR, BACKGROUND_SIZE, DEFAULT_LOGO, PALETTES, THEMES, palette_asset, theme_asset,
)

W, H = BACKGROUND_SIZE
SS = 2  # supersampling factor for smooth edges


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def palette(top: str, bottom: str) -> Image.Image:
    w, h = 320, 180
    a, b = rgb(top), rgb(bottom)
    img = Image.new("RGB", (w, h))
    px = img.load()
    for y in range(h):
        t = y / (h - 1)
        row = tuple(round(a[i] + (b[i] - a[i]) * t) for i in range(3))
        for x in range(w):
            px[x, y] = row
    return img


def canvas() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGBA", (W * SS, H * SS), (0, 0, 0, 0))
    return img, ImageDraw.Draw(img)


def finish(img: Image.Image) -> Image.Image:
    return img.resize((W, H), Image.Resampling.LANCZOS)


def s(v: float) -> int:
    return round(v * SS)


def theme_default() -> Image.Image:
    """Soft light circles, top right and bottom left."""
    img, _ = canvas()
    for cx, cy, r, alpha in [(1350, 150, 420, 46), (1500, 520, 260, 34), (180, 820, 380, 40), (520, 980, 300, 28)]:
        layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
        ImageDraw.Draw(layer).ellipse([s(cx - r), s(cy - r), s(cx + r), s(cy + r)], fill=(255, 255, 255, alpha))
        img = Image.alpha_composite(img, layer)
    return finish(img)


def ridge(rng: random.Random, base: float, amp: float, steps: int) -> list[tuple[float, float]]:
    pts = [(0.0, base + rng.uniform(-amp, amp) * 0.3)]
    for i in range(1, steps + 1):
        x = W * i / steps
        up = i % 2 == 1
        pts.append((x, base - (amp * rng.uniform(0.5, 1.0) if up else -amp * rng.uniform(0.0, 0.4))))
    return pts + [(W, H), (0, H)]


def theme_mountains() -> Image.Image:
    """Three ranges of mountains, the nearest darkest, with snow caps on the farthest."""
    rng = random.Random(7)
    img, _ = canvas()
    for base, amp, steps, fill in [(560, 260, 7, (255, 255, 255, 70)), (680, 200, 9, (20, 30, 60, 60)),
                                   (800, 130, 12, (10, 15, 35, 110))]:
        layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
        d = ImageDraw.Draw(layer)
        pts = ridge(rng, base, amp, steps)
        d.polygon([(s(x), s(y)) for x, y in pts], fill=fill)
        img = Image.alpha_composite(img, layer)
    return finish(img)


def person(d: ImageDraw.ImageDraw, x: float, ground: float, height: float, fill: tuple[int, int, int, int]) -> None:
    head = height * 0.18
    d.ellipse([s(x - head), s(ground - height), s(x + head), s(ground - height + 2 * head)], fill=fill)
    body_top = ground - height + 2.3 * head
    d.rounded_rectangle([s(x - height * 0.28), s(body_top), s(x + height * 0.28), s(ground + height * 0.2)],
                        radius=s(height * 0.22), fill=fill)


def theme_characters() -> Image.Image:
    """A row of friendly figures along the bottom edge, in soft light and dark tones."""
    rng = random.Random(11)
    img, d = canvas()
    x = 90.0
    while x < W - 60:
        height = rng.uniform(170, 260)
        tone = rng.choice([(255, 255, 255, 120), (255, 255, 255, 80), (20, 25, 50, 90), (20, 25, 50, 60)])
        person(d, x, H - 10, height, tone)
        x += rng.uniform(150, 220)
    return finish(img)


def theme_rocks() -> Image.Image:
    """Piles of rounded stones in the lower corners."""
    rng = random.Random(5)
    img, _ = canvas()
    for corner_x, direction in [(0, 1), (W, -1)]:
        for i in range(9):
            layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
            d = ImageDraw.Draw(layer)
            w = rng.uniform(140, 300)
            h = w * rng.uniform(0.45, 0.7)
            cx = corner_x + direction * rng.uniform(40, 520)
            cy = H - rng.uniform(0, 220) * (1 - abs(cx - corner_x) / 700)
            shade = rng.choice([(30, 30, 45, 120), (60, 60, 75, 110), (255, 255, 255, 70)])
            d.ellipse([s(cx - w / 2), s(cy - h / 2), s(cx + w / 2), s(cy + h / 2)], fill=shade)
            img = Image.alpha_composite(img, layer)
    return finish(img.filter(ImageFilter.SMOOTH))


def logo() -> Image.Image:
    """The Herewith wordmark: a speech-bubble mark and the name, 480x120, transparent."""
    img = Image.new("RGBA", (480 * SS, 120 * SS), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    blue = rgb("#2f5fd0") + (255,)
    d.rounded_rectangle([s(8), s(14), s(100), s(92)], radius=s(24), fill=blue)
    d.polygon([(s(30), s(88)), (s(30), s(112)), (s(58), s(88))], fill=blue)
    d.ellipse([s(30), s(40), s(48), s(58)], fill=(255, 255, 255, 255))
    d.ellipse([s(60), s(40), s(78), s(58)], fill=(255, 255, 255, 255))
    font = ImageFont.load_default(size=64 * SS)
    d.text((s(118), s(60)), "herewith", font=font, fill=(30, 35, 55, 255), anchor="lm")
    return img.resize((480, 120), Image.Resampling.LANCZOS)


def main() -> None:
    ASSETS_DIR.mkdir(parents=True, exist_ok=True)
    for name, (top, bottom) in PALETTES.items():
        palette(top, bottom).save(palette_asset(name), optimize=True)
    makers = {"default": theme_default, "mountains": theme_mountains, "characters": theme_characters,
              "rocks": theme_rocks}
    assert set(makers) == set(THEMES)
    for name in THEMES:
        makers[name]().save(theme_asset(name), optimize=True)
    logo().save(DEFAULT_LOGO, optimize=True)
    total = 0
    for p in sorted(ASSETS_DIR.iterdir()):
        total += p.stat().st_size
        print(f"{p.name:28} {p.stat().st_size:>8} bytes")
    print(f"{'total':28} {total:>8} bytes")


if __name__ == "__main__":
    main()
