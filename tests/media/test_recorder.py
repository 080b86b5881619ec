"""herewith.media.recorder: the pool of headless Chromium recorders, with real Chromium processes.

The pages here stand in for the recorder page (web/static/recorder.js): they report ``joined`` / ``stopped`` /
``failed`` through the pool's DevTools binding and count their loads and stops on a small HTTP server on
127.0.0.1, so the pool's rules are checked without a room: slots, bounded starts, graceful stop, restart after
``kill -9``, ``on_lost`` when it cannot go on. The room page itself is recorded in tests/e2e/test_recording.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from herewith.config import Settings
from herewith.media.recorder import RecorderPool

pytestmark = pytest.mark.netns

PAGE = """<!doctype html><meta charset="utf-8"><title>fake recorder</title><script>
const q = new URLSearchParams(location.search);
const id = q.get('id'), mode = q.get('mode');
const ev = (type, detail) => window.herewithRecorderEvent && window.herewithRecorderEvent(JSON.stringify({type, detail}));
window.herewithRecorder = {stop: async () => { await fetch('/hit?what=stop&id=' + id); ev('stopped'); return {ok: true}; }};
fetch('/hit?what=load&id=' + id).then(() => {  // counted before it says anything
  if (mode !== 'nojoin') ev('joined');
  if (mode === 'selfstop') setTimeout(() => ev('stopped'), 1000);
  if (mode === 'fail') setTimeout(() => ev('failed', 'ingest closed (4403)'), 1000);
});
</script>"""


class FakePages:
    """HTTP server for the fake recorder page; ``hits`` lists (what, id) in arrival order."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, str]] = []
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/hit":
                    pages.hits.append((q.get("what", ""), q.get("id", "")))
                    body, ctype = b"ok", "text/plain"
                else:
                    body, ctype = PAGE.encode(), "text/html"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, recording_id: str, mode: str = "join") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/rec?id={recording_id}&mode={mode}"

    def count(self, what: str, recording_id: str) -> int:
        return self.hits.count((what, recording_id))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def pages() -> Iterator[FakePages]:
    p = FakePages()
    yield p
    p.close()


def make_pool(tmp_path: Path, n: int = 2, **kw: object) -> RecorderPool:
    return RecorderPool(Settings(data_dir=tmp_path, recorders_per_node=n), **kw)  # type: ignore[arg-type]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


async def until(cond, timeout: float = 15.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_start_records_until_stop_then_chromium_exits(tmp_path: Path, pages: FakePages) -> None:
    pool = make_pool(tmp_path)
    try:
        assert await pool.start("rec-a", pages.url("rec-a"))
        assert pool.active("rec-a") and pool.busy == 1 and pool.phase("rec-a") == "joined"
        [pid] = pool.pids("rec-a")
        assert alive(pid) and pages.count("load", "rec-a") == 1
        assert await pool.start("rec-a", pages.url("rec-a"))  # already running: no second browser
        assert pool.busy == 1 and pages.count("load", "rec-a") == 1
        await pool.stop("rec-a")
        assert pages.count("stop", "rec-a") == 1  # the page was asked to flush before the browser closed
        assert not pool.active("rec-a") and pool.busy == 0
        await until(lambda: not alive(pid), 5)
        assert list((tmp_path / "recorders").iterdir()) == []  # profile and log removed
        await pool.stop("rec-a")  # idempotent
    finally:
        await pool.close()


async def test_a_full_pool_says_no_at_once(tmp_path: Path, pages: FakePages) -> None:
    pool = make_pool(tmp_path, n=1)
    try:
        assert await pool.start("rec-a", pages.url("rec-a"))
        t0 = time.monotonic()
        assert not await pool.start("rec-b", pages.url("rec-b"))
        assert time.monotonic() - t0 < 0.5
        await pool.stop("rec-a")
        assert await pool.start("rec-b", pages.url("rec-b"))  # the slot is free again
    finally:
        await pool.close()
    assert pool.busy == 0 and pages.count("stop", "rec-b") == 1
    assert not await pool.start("rec-c", pages.url("rec-c"))  # closed: no more recorders


async def test_no_recorders_configured_or_no_chromium(tmp_path: Path, pages: FakePages) -> None:
    assert not await make_pool(tmp_path, n=0).start("rec-a", pages.url("rec-a"))
    missing = RecorderPool(Settings(data_dir=tmp_path, chromium_path=str(tmp_path / "no-chromium")))
    assert not await missing.start("rec-a", pages.url("rec-a"))


async def test_a_page_that_never_joins_fails_within_the_start_timeout(tmp_path: Path, pages: FakePages) -> None:
    pool = make_pool(tmp_path, start_timeout=3.0)
    t0 = time.monotonic()
    assert not await pool.start("rec-a", pages.url("rec-a", mode="nojoin"))
    assert time.monotonic() - t0 < 8
    assert pool.busy == 0 and pages.count("load", "rec-a") == 1
    assert list((tmp_path / "recorders").iterdir()) == []


async def test_a_chromium_that_dies_while_starting_fails_the_start_at_once(tmp_path: Path, pages: FakePages) -> None:
    pool = make_pool(tmp_path, start_timeout=30.0)
    start = asyncio.create_task(pool.start("rec-a", pages.url("rec-a", mode="nojoin")))
    await until(lambda: pages.count("load", "rec-a") == 1)
    [pid] = pool.pids("rec-a")
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    assert not await start
    assert time.monotonic() - t0 < 10  # not the 30 s start timeout
    assert pool.busy == 0


async def test_kill_9_restarts_the_recorder_then_gives_up(tmp_path: Path, pages: FakePages) -> None:
    lost: list[tuple[str, str]] = []

    async def on_lost(recording_id: str, reason: str) -> None:
        lost.append((recording_id, reason))

    pool = make_pool(tmp_path, on_lost=on_lost, max_restarts=1)
    try:
        assert await pool.start("rec-a", pages.url("rec-a"))
        [pid] = pool.pids("rec-a")
        os.kill(pid, signal.SIGKILL)
        # a new Chromium opens the same page again
        await until(lambda: pages.count("load", "rec-a") == 2 and pool.pids("rec-a") not in ([], [pid])
                    and pool.phase("rec-a") == "joined")
        [pid2] = pool.pids("rec-a")
        assert pool.active("rec-a") and not lost
        os.kill(pid2, signal.SIGKILL)  # the second crash: restarts used up
        await until(lambda: bool(lost))
        assert lost[0][0] == "rec-a" and "crashed" in lost[0][1]
        assert pool.busy == 0 and not pool.active("rec-a")
        await until(lambda: not alive(pid2), 5)
    finally:
        await pool.close()


async def test_a_page_failure_is_lost_without_restart(tmp_path: Path, pages: FakePages) -> None:
    lost: list[tuple[str, str]] = []
    pool = make_pool(tmp_path, on_lost=lambda rid, reason: lost.append((rid, reason)))
    try:
        assert await pool.start("rec-a", pages.url("rec-a", mode="fail"))
        await until(lambda: bool(lost))
        assert lost == [("rec-a", "failed: ingest closed (4403)")]
        assert pool.busy == 0 and pages.count("load", "rec-a") == 1
    finally:
        await pool.close()


async def test_a_page_that_stops_by_itself_frees_its_slot(tmp_path: Path, pages: FakePages) -> None:
    lost: list[tuple[str, str]] = []
    pool = make_pool(tmp_path, n=1, on_lost=lambda rid, reason: lost.append((rid, reason)))
    try:
        assert await pool.start("rec-a", pages.url("rec-a", mode="selfstop"))
        [pid] = pool.pids("rec-a")
        await until(lambda: pool.busy == 0)
        assert not lost
        await until(lambda: not alive(pid), 5)
        await pool.stop("rec-a")  # after the fact: nothing to do
        assert await pool.start("rec-b", pages.url("rec-b"))
    finally:
        await pool.close()


async def test_close_stops_every_recorder(tmp_path: Path, pages: FakePages) -> None:
    pool = make_pool(tmp_path, n=2)
    assert all(await asyncio.gather(pool.start("rec-a", pages.url("rec-a")), pool.start("rec-b", pages.url("rec-b"))))
    pids = pool.pids("rec-a") + pool.pids("rec-b")
    await pool.close()
    assert pages.count("stop", "rec-a") == 1 and pages.count("stop", "rec-b") == 1
    assert pool.busy == 0
    await until(lambda: not any(alive(p) for p in pids), 5)
