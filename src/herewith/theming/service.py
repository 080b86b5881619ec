"""Rules of room theming (CONTRACT.md, "Room theming"). Services take the session first and never commit.

- Only the organization that owns a room may theme it; an unknown, deleted or foreign room is a 404.
- ``tokensPreset`` ``custom`` applies the given colours (an absent one keeps Herewith's default);
  ``default`` or absent applies Herewith's defaults (the given colours are still validated and kept).
- An uploaded logo/background replaces the previous one; the JSON forms reset the logo or choose a
  built-in palette + theme for a background.
- :func:`get_room_theme` resolves what a room page shows, defaults filled in.

Usage::

    obsolete = await set_image(session, store, org, "/room-1234", "logo", checked, now)
    await session.commit(); await asyncio.to_thread(store.remove, obsolete)
    theme = await get_room_theme(session, "/room-1234")
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from herewith.auth.models import OrganizationRef
from herewith.errors import NotFound
from herewith.meetings.models import Meeting
from herewith.rooms import service as rooms
from herewith.theming import repository as repo
from herewith.theming.images import MEDIA_TYPES, CheckedImage, default_logo, preset_background
from herewith.theming.models import RoomThemeRow
from herewith.theming.presets import DEFAULT_COLORS, PALETTES, THEMES
from herewith.theming.schemas import (
    BackgroundPresetRequest,
    ImageKind,
    RoomTheme,
    ThemeTokensRequest,
)
from herewith.theming.storage import ThemeStore

# kind in the URL -> column prefix in room_themes
_COLUMNS: dict[str, str] = {
    "logo": "logo",
    "room-background": "room_background",
    "room-knock-page-background": "knock_background",
}


def normalize_room_name(raw: str) -> str:
    """The stored form of a room name from a URL path: ``"abc"``, ``"/abc"`` or ``"%2Fabc"`` (already
    decoded) all give ``"/abc"`` (:func:`herewith.rooms.service.normalize_room_name`). Raises
    :class:`NotFound` (404) for names that cannot be rooms."""
    try:
        return rooms.normalize_room_name(raw)
    except rooms.RoomNotFound:
        raise NotFound() from None


async def _owned_room(session: AsyncSession, org: OrganizationRef, room_name: str) -> Meeting:
    meeting = await repo.get_live_meeting(session, normalize_room_name(room_name), lock=True)
    if meeting is None or meeting.organization_id != org.id:
        raise NotFound()
    return meeting


async def set_tokens(session: AsyncSession, org: OrganizationRef, room_name: str, body: ThemeTokensRequest,
                     now: datetime) -> None:
    """Set a room's colour tokens (``PUT /rooms/{roomName}/theme/tokens``). 404 for a room not owned."""
    meeting = await _owned_room(session, org, room_name)
    row = await repo.get_or_create(session, meeting.id, now)
    colors = body.tokens.colors if body.tokens and body.tokens.colors else None
    row.tokens_preset = body.tokensPreset or "default"
    row.primary_color = colors.primary if colors else None
    row.secondary_color = colors.secondary if colors else None
    row.focus_color = colors.focus if colors else None
    row.updated_at = now


async def set_image(session: AsyncSession, store: ThemeStore, org: OrganizationRef, room_name: str, kind: ImageKind,
                    image: CheckedImage | None, now: datetime,
                    preset: BackgroundPresetRequest | None = None) -> list[Path]:
    """Set (``image``) or reset (``image`` None) a room's ``kind`` image; for backgrounds a reset picks
    ``preset`` (default palette and theme when None).

    Writes the file before the row; returns the files the row no longer refers to, to be removed with
    :meth:`ThemeStore.remove` once the transaction committed. 404 for a room not owned.
    """
    meeting = await _owned_room(session, org, room_name)
    row = await repo.get_or_create(session, meeting.id, now)
    col = _COLUMNS[kind]
    old_sha, old_fmt = getattr(row, f"{col}_sha256"), getattr(row, f"{col}_format")
    if image is not None:
        await asyncio.to_thread(store.save, meeting.id, kind, image)
        setattr(row, f"{col}_sha256", image.sha256)
        setattr(row, f"{col}_format", image.format)
    else:
        setattr(row, f"{col}_sha256", None)
        setattr(row, f"{col}_format", None)
        if kind != "logo":
            preset = preset or BackgroundPresetRequest()
            setattr(row, f"{col}_palette", preset.palette)
            setattr(row, f"{col}_theme", preset.theme)
    row.updated_at = now
    if old_sha and (image is None or old_sha != image.sha256):
        return [store.path(meeting.id, kind, old_sha, old_fmt)]
    return []


# ---- reading: the room page and the public image route -----------------------------------------------

def preset_url(palette: str, theme: str) -> str:
    """Public URL of a built-in background."""
    return f"/themes/presets/{palette}/{theme}.jpg"


DEFAULT_LOGO_URL = "/themes/logo-default.png"


def _room_image_url(room_name: str, kind: str, sha256: str) -> str:
    return f"/themes/rooms/{quote(room_name.lstrip('/'), safe='')}/{kind}?v={sha256[:16]}"


def resolve(room_name: str, row: RoomThemeRow | None) -> RoomTheme:
    """The :class:`RoomTheme` of a row (``None``: all defaults)."""
    if row is None:
        bg = preset_url("default", "default")
        return RoomTheme(primary=DEFAULT_COLORS["primary"], secondary=DEFAULT_COLORS["secondary"],
                         focus=DEFAULT_COLORS["focus"], logo_url=DEFAULT_LOGO_URL, room_background_url=bg,
                         knock_background_url=bg)
    custom = row.tokens_preset == "custom"

    def color(name: str) -> str:
        value = getattr(row, f"{name}_color") if custom else None
        return value or DEFAULT_COLORS[name]

    def image_url(kind: str) -> str:
        col = _COLUMNS[kind]
        sha = getattr(row, f"{col}_sha256")
        if sha:
            return _room_image_url(room_name, kind, sha)
        if kind == "logo":
            return DEFAULT_LOGO_URL
        return preset_url(getattr(row, f"{col}_palette"), getattr(row, f"{col}_theme"))

    return RoomTheme(primary=color("primary"), secondary=color("secondary"), focus=color("focus"),
                     logo_url=image_url("logo"), room_background_url=image_url("room-background"),
                     knock_background_url=image_url("room-knock-page-background"),
                     tokens_preset=row.tokens_preset)


async def get_room_theme(session: AsyncSession, room_name: str) -> RoomTheme:
    """The theme a room page renders: colours, logo URL, room and knock-page background URLs.

    ``room_name`` with or without its leading slash. An unknown or deleted room, or one never themed,
    gets Herewith's defaults (the caller decides whether the room exists). URLs are paths on this server.
    """
    try:
        name = normalize_room_name(room_name)
    except NotFound:
        return resolve(room_name, None)
    meeting = await repo.get_live_meeting(session, name)
    if meeting is None:
        return resolve(name, None)
    return resolve(name, await repo.get(session, meeting.id))


@dataclass(frozen=True)
class ServedImage:
    """An image as the public route sends it: bytes, media type, strong ETag (quoted), and ``version``
    (what ``?v=`` of the current URL carries; ``None`` for built-in images)."""

    data: bytes
    media_type: str
    etag: str
    version: str | None = None


def _etag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


async def room_image(session: AsyncSession, store: ThemeStore, room_name: str, kind: ImageKind) -> ServedImage:
    """The image a room currently shows for ``kind`` (uploaded, or the built-in one). 404 for an unknown
    or deleted room."""
    meeting = await repo.get_live_meeting(session, normalize_room_name(room_name))
    if meeting is None:
        raise NotFound()
    row = await repo.get(session, meeting.id)
    col = _COLUMNS[kind]
    sha = getattr(row, f"{col}_sha256") if row else None
    if row is not None and sha:
        fmt = getattr(row, f"{col}_format")
        data = await asyncio.to_thread(store.read, meeting.id, kind, sha, fmt)
        if data is not None:
            return ServedImage(data, MEDIA_TYPES[fmt], f'"{sha[:32]}"', sha[:16])
    if kind == "logo":
        return builtin_logo()
    palette = getattr(row, f"{col}_palette") if row else "default"
    theme = getattr(row, f"{col}_theme") if row else "default"
    return await builtin_background(palette, theme)


def builtin_logo() -> ServedImage:
    data = default_logo()
    return ServedImage(data, "image/png", _etag(data))


async def builtin_background(palette: str, theme: str) -> ServedImage:
    """A built-in background (validated names). Raises :class:`NotFound` for unknown names."""
    if palette not in PALETTES or theme not in THEMES:
        raise NotFound()
    data = await asyncio.to_thread(preset_background, palette, theme)
    return ServedImage(data, "image/jpeg", _etag(data))


async def forget_room(store: ThemeStore, meeting: Meeting) -> None:
    """Remove a deleted or deactivated room's theme files (the row stays; serving falls back to the
    built-in images when a file is gone)."""
    await asyncio.to_thread(store.remove_room, meeting.id)
