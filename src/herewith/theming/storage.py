"""Files of room theming in the data directory: ``<data_dir>/themes/<meeting_id>/<kind>.<sha256>.<ext>``.

Content-addressed, so a file never changes once written (the digest is also its ETag) and a replaced
image is a new file; the old one is removed once the new row is committed. Writes are atomic
(temporary file + rename). All methods block: call them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from herewith.theming.images import EXTENSIONS, CheckedImage


class ThemeStore:
    """Uploaded theme images of every room under ``root`` (``<data_dir>/themes``).

    Usage::

        store = ThemeStore(settings.data_dir / "themes")
        path = store.save(meeting.id, "logo", checked)
        data = store.read(meeting.id, "logo", checked.sha256, "png")
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, meeting_id: str, kind: str, sha256: str, fmt: str) -> Path:
        """Where the ``kind`` image with digest ``sha256`` and format ``png``|``jpeg`` of a room lives."""
        if not meeting_id or "/" in meeting_id or meeting_id.startswith("."):
            raise ValueError(f"bad meeting id {meeting_id!r}")
        return self.root / meeting_id / f"{kind}.{sha256}.{EXTENSIONS[fmt]}"

    def save(self, meeting_id: str, kind: str, image: CheckedImage) -> Path:
        """Write ``image`` for a room (no-op when that exact file exists) and return its path."""
        path = self.path(meeting_id, kind, image.sha256, image.format)
        if path.exists():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(image.data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def read(self, meeting_id: str, kind: str, sha256: str, fmt: str) -> bytes | None:
        """The stored bytes, or ``None`` when the file is gone."""
        try:
            return self.path(meeting_id, kind, sha256, fmt).read_bytes()
        except FileNotFoundError:
            return None

    def remove(self, paths: list[Path]) -> None:
        """Delete files that no committed row refers to any more (missing files are fine)."""
        for p in paths:
            p.unlink(missing_ok=True)

    def remove_room(self, meeting_id: str) -> None:
        """Delete every theme file of a room (after the meeting was deleted)."""
        if meeting_id and "/" not in meeting_id and not meeting_id.startswith("."):
            shutil.rmtree(self.root / meeting_id, ignore_errors=True)
