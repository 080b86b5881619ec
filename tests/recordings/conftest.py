"""Fixtures of the recordings tests: fast loops, a real WebM made by ffmpeg, a streaming recorder launcher
attached to the server, and moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from herewith.config import Settings
from tests.recordings.launchers import StreamingLauncher
from tests.support.servers import ThreadServer
from tests.webhooks import helpers as _webhook_helpers  # noqa: F401 - lets servers deliver to 127.0.0.1 receivers

WEBM_SECONDS = 20


def fast_settings(tmp_path: Path, database_url: str | None, **extra) -> Settings:  # noqa: ANN003
    return Settings(data_dir=tmp_path / "data", database_url=database_url, secret_key="test-secret-key-0123456789abcdef",
                    background_tasks=True, webhook_poll_seconds=0.1, recording_poll_seconds=0.2,
                    webhook_allow_private_targets=True, recording_stop_grace_seconds=1.0, **extra)


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return fast_settings(tmp_path, database_url)


@pytest.fixture(scope="session")
def webm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s of 640x360 test pattern (25 fps) and a 440 Hz tone as VP8 + Opus WebM, written to a pipe as a
    browser's MediaRecorder writes it (no seek back, no index)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    path = tmp_path_factory.mktemp("media") / "call.webm"
    with path.open("wb") as out:
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-f", "lavfi",
             "-i", "sine=frequency=440", "-t", str(WEBM_SECONDS), "-c:v", "libvpx", "-deadline", "realtime",
             "-cpu-used", "8", "-b:v", "600k", "-c:a", "libopus", "-f", "webm", "-"],
            stdout=out, check=True, timeout=120)
    return path


@pytest.fixture(scope="session")
def webm(webm_path: Path) -> bytes:
    return webm_path.read_bytes()


@pytest.fixture(scope="session")
def h264_webm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The same 20 s with H.264 video in Matroska, as Chromium's MediaRecorder writes
    ``video/webm;codecs=h264,opus`` (the recorder page's first choice)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-f", "lavfi",
         "-i", "sine=frequency=440", "-t", str(WEBM_SECONDS), "-c:v", "libx264", "-preset", "ultrafast",
         "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-c:a", "libopus", "-f", "matroska", "-"],
        capture_output=True, check=True, timeout=120)
    return out.stdout


@pytest.fixture
def launcher(server: ThreadServer, webm: bytes) -> StreamingLauncher:
    """The server's recorder launcher, replaced by a :class:`StreamingLauncher` of the test WebM."""
    fake = StreamingLauncher(webm)
    server.services.recordings.launcher = fake
    return fake


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's standalone S3-compatible server on 127.0.0.1 (a free port); its endpoint URL."""
    from moto.server import ThreadedMotoServer

    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        srv.stop()
