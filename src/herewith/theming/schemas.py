"""Request bodies of the theming calls (named as in CONTRACT.md, "Room theming") and :class:`RoomTheme`,
the resolved theme a room page renders."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")

Palette = Literal["default", "grey", "purple", "burgund"]
BackgroundTheme = Literal["default", "mountains", "characters", "rocks"]
ImageKind = Literal["logo", "room-background", "room-knock-page-background"]
IMAGE_KINDS: tuple[ImageKind, ...] = ("logo", "room-background", "room-knock-page-background")


class ThemeColors(BaseModel):
    """``tokens.colors``: each ``#RRGGBB``; an absent colour keeps Herewith's default."""

    model_config = ConfigDict(extra="ignore")

    primary: str | None = None
    secondary: str | None = None
    focus: str | None = None

    @field_validator("primary", "secondary", "focus")
    @classmethod
    def _hex(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if not isinstance(v, str) or not HEX_COLOR.fullmatch(v):
            raise ValueError("must be a colour in the form #RRGGBB")
        return v.lower()


class ThemeTokens(BaseModel):
    model_config = ConfigDict(extra="ignore")

    colors: ThemeColors | None = None


class ThemeTokensRequest(BaseModel):
    """Body of ``PUT /rooms/{roomName}/theme/tokens``.

    ``tokensPreset`` ``custom``: use the given colours; ``default`` or absent: Herewith's defaults (the
    contract's "organization defaults").
    """

    model_config = ConfigDict(extra="ignore")

    tokens: ThemeTokens | None = None
    tokensPreset: Literal["custom", "default"] | None = None


class LogoResetRequest(BaseModel):
    """JSON body of ``PUT /rooms/{roomName}/theme/logo``: ``{"theme": "default"}`` resets the logo."""

    model_config = ConfigDict(extra="ignore")

    theme: Literal["default"]


class BackgroundPresetRequest(BaseModel):
    """JSON body of the background calls: a built-in ``palette`` (colour) and ``theme`` (picture)."""

    model_config = ConfigDict(extra="ignore")

    palette: Palette = "default"
    theme: BackgroundTheme = "default"


def _on_color(hex_color: str) -> str:
    """Black or white, whichever reads better on ``hex_color`` (WCAG relative luminance)."""
    channels = []
    for i in (1, 3, 5):
        c = int(hex_color[i:i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
    lum = 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]
    return "#000000" if lum > 0.179 else "#ffffff"


@dataclass(frozen=True)
class RoomTheme:
    """The theme of one room, defaults filled in, as the room page and knock page render it.

    Colours are ``#rrggbb``. URLs are absolute paths on this server (``/themes/...``), public, each
    carrying a version so a changed image gets a new URL.
    """

    primary: str
    secondary: str
    focus: str
    logo_url: str
    room_background_url: str
    knock_background_url: str
    tokens_preset: str = "default"

    @property
    def on_primary(self) -> str:
        """Text colour for use on ``primary`` (``#000000`` or ``#ffffff``)."""
        return _on_color(self.primary)

    def css_variables(self) -> dict[str, str]:
        """CSS custom properties of the theme: ``--herewith-primary``, ``--herewith-on-primary``,
        ``--herewith-secondary``, ``--herewith-focus``, ``--herewith-logo``, ``--herewith-room-background``,
        ``--herewith-knock-background`` (images as ``url("...")``)."""
        return {
            "--herewith-primary": self.primary,
            "--herewith-on-primary": self.on_primary,
            "--herewith-secondary": self.secondary,
            "--herewith-focus": self.focus,
            "--herewith-logo": f'url("{self.logo_url}")',
            "--herewith-room-background": f'url("{self.room_background_url}")',
            "--herewith-knock-background": f'url("{self.knock_background_url}")',
        }

    def css_declarations(self) -> str:
        """:meth:`css_variables` as one declaration block body, e.g. for ``<style>:root{...}</style>``.
        Safe to inline: colours are validated hex, URLs are built from hex digests and fixed names."""
        return "; ".join(f"{k}: {v}" for k, v in self.css_variables().items())
