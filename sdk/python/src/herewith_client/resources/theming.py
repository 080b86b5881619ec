"""``client.theming``: ``PUT /v1/rooms/{roomName}/theme/*`` (contract, "Room theming"): colours, logo,
room and knock page backgrounds. Images are PNG or JPEG, at most 600 kB; the server decodes and checks them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from herewith_client.resources._common import body, room_segment

if TYPE_CHECKING:
    from herewith_client._client import AsyncHerewith, Herewith

Image = bytes | str | os.PathLike[str] | IO[bytes]
"""An image: its bytes, a path to it, or a binary file open for reading."""
Palette = Literal["default", "grey", "purple", "burgund"]
BackgroundTheme = Literal["default", "mountains", "characters", "rocks"]
Background = Literal["room-background", "room-knock-page-background"]


def _image_part(image: Image) -> dict[str, Any]:
    """The multipart ``image`` part: (filename, bytes, content type) read once, so a retry can send it again."""
    name = "image"
    if isinstance(image, (bytes, bytearray)):
        data = bytes(image)
    elif isinstance(image, (str, os.PathLike)):
        data = Path(image).read_bytes()
        name = Path(image).name
    else:
        data = image.read()
        name = Path(getattr(image, "name", "image") or "image").name
    ctype = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg" if data[:3] == b"\xff\xd8\xff" \
        else "application/octet-stream"
    return {"image": (name, data, ctype)}


def _tokens_body(primary: str | None, secondary: str | None, focus: str | None, preset: str) -> dict[str, Any]:
    return {"tokens": {"colors": body(primary=primary, secondary=secondary, focus=focus)}, "tokensPreset": preset}


def _background(image: Image | None, palette: str | None, theme: str | None) -> dict[str, Any]:
    if image is not None:
        if palette is not None or theme is not None:
            raise ValueError("give an image, or a palette and theme, not both")
        return {"files": _image_part(image)}
    return {"json": body(palette=palette or "default", theme=theme or "default")}


class Theming:
    """Room theming. ``room_name``: the meeting's ``roomName``, with or without its leading slash. Every call
    answers 204 (None); BadRequestError names a bad colour or image, NotFoundError an unknown room."""

    def __init__(self, client: Herewith) -> None:
        self._client = client

    def set_tokens(self, room_name: str, *, primary: str | None = None, secondary: str | None = None,
                   focus: str | None = None, preset: Literal["custom", "default"] = "custom") -> None:
        """Set the room's colours, each ``#RRGGBB`` (an absent one keeps the default); ``preset="default"``
        goes back to Herewith's colours."""
        self._client._request("PUT", f"/rooms/{room_segment(room_name)}/theme/tokens",
                              json=_tokens_body(primary, secondary, focus, preset))

    def set_logo(self, room_name: str, image: Image) -> None:
        """Upload the room's logo (PNG or JPEG; 400 px wide or more recommended)."""
        self._client._request("PUT", f"/rooms/{room_segment(room_name)}/theme/logo", files=_image_part(image))

    def reset_logo(self, room_name: str) -> None:
        """Back to the default logo."""
        self._client._request("PUT", f"/rooms/{room_segment(room_name)}/theme/logo", json={"theme": "default"})

    def set_background(self, room_name: str, *, image: Image | None = None, palette: Palette | None = None,
                       theme: BackgroundTheme | None = None, which: Background = "room-background") -> None:
        """The room's background (``which="room-knock-page-background"``: the knock page's): an uploaded
        ``image`` (PNG or JPEG, 1400 px wide or more, at most 600 kB) or a built-in ``palette`` and ``theme``."""
        self._client._request("PUT", f"/rooms/{room_segment(room_name)}/theme/{which}",
                              **_background(image, palette, theme))


class AsyncTheming:
    """Room theming; as :class:`Theming`, awaited."""

    def __init__(self, client: AsyncHerewith) -> None:
        self._client = client

    async def set_tokens(self, room_name: str, *, primary: str | None = None, secondary: str | None = None,
                         focus: str | None = None, preset: Literal["custom", "default"] = "custom") -> None:
        """See :meth:`Theming.set_tokens`."""
        await self._client._request("PUT", f"/rooms/{room_segment(room_name)}/theme/tokens",
                                    json=_tokens_body(primary, secondary, focus, preset))

    async def set_logo(self, room_name: str, image: Image) -> None:
        """See :meth:`Theming.set_logo`."""
        await self._client._request("PUT", f"/rooms/{room_segment(room_name)}/theme/logo", files=_image_part(image))

    async def reset_logo(self, room_name: str) -> None:
        """See :meth:`Theming.reset_logo`."""
        await self._client._request("PUT", f"/rooms/{room_segment(room_name)}/theme/logo", json={"theme": "default"})

    async def set_background(self, room_name: str, *, image: Image | None = None, palette: Palette | None = None,
                             theme: BackgroundTheme | None = None, which: Background = "room-background") -> None:
        """See :meth:`Theming.set_background`."""
        await self._client._request("PUT", f"/rooms/{room_segment(room_name)}/theme/{which}",
                                    **_background(image, palette, theme))
