"""The recorder pool: supervised headless Chromium processes that record rooms (DESIGN.md, "Components").

A cloud recording is a participant with role ``recorder``: a headless Chromium opens the room page in
recorder mode (``{public_url}/{roomName}?roomKey=<recorder key>&recorder=1&recordingId=..&ingestToken=..``,
built by :mod:`herewith.recordings`). The page (``web/static/recorder.js``) joins like a viewer, draws the
grid into a 1280x720 canvas, mixes the audio and streams MediaRecorder chunks to the ingest WebSocket. This
module only runs the browsers, as :mod:`herewith.media.supervisor` runs Janus:

* one Chromium process per recording (a crash costs one recording, and its CPU is easy to see), launched at
  :meth:`RecorderPool.start` and closed at :meth:`RecorderPool.stop`; at most ``recorders_per_node`` at once
  (``HEREWITH_RECORDERS_PER_NODE``): a start beyond that returns False at once, so the host is told
  "unavailable" and nothing waits;
* driven over ``--remote-debugging-pipe`` (the DevTools protocol on file descriptors 3 and 4, no TCP port
  that another local user could connect to; no Playwright or Node.js in the server): a fresh browser context,
  the page, a binding through which the page reports ``joined`` / ``recording`` / ``stopped`` / ``failed``;
* supervised: when Chromium exits or its page crashes mid-recording, a new Chromium opens the same page again
  (at most ``max_restarts`` times per recording); the page's MediaRecorders then start new WebM documents,
  which the ingest writes as the next file part. When that is not possible (restarts used up, the relaunch
  failed, the page reported a fatal error such as a refused ingest token), ``on_lost(recording_id, reason)``
  is awaited and the slot is freed: the recordings service finishes the recording with what exists;
* every wait is bounded (``start_timeout``, ``stop_timeout``, seconds); the event loop only moves small JSON
  messages: decoding, compositing and encoding happen in Chromium's own processes;
* Chromium runs in its own process group with a parent-death signal: a server that dies takes its recorders
  with it, and a hung one is killed as a group.

Usage::

    pool = RecorderPool(settings, on_lost=finish_with_what_exists)
    if not await pool.start(recording_id, page_url):   # False: no free recorder (or it did not come up)
        ...                                              # tell the host "unavailable"
    ...
    await pool.stop(recording_id)    # the page flushes its last chunks and closes its sockets, then Chromium exits
    await pool.close()               # shutdown: stops every recording
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import inspect
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from herewith.config import Settings

__all__ = ["CHROMIUM_FLAGS", "RecorderError", "RecorderPool"]

log = structlog.get_logger(__name__)

LostCallback = Callable[[str, str], Awaitable[None] | None]

# The flags of the browser tests (tests/e2e/conftest.py) minus the fake devices: a recorder captures nothing.
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu",
    "--autoplay-policy=no-user-gesture-required",  # AudioContext and <video> run without a click
    "--allow-loopback-in-peer-connection",          # media from a server on 127.0.0.0/8
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--no-default-browser-check", "--disable-quic", "--password-store=basic", "--use-mock-keychain",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--disable-renderer-backgrounding", "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",    # a headless page counts as hidden: keep it at full pace
    "--disable-dev-shm-usage",                      # containers give /dev/shm 64 MB: shared memory in /tmp
    "--window-size=1280,720", "--force-device-scale-factor=1",
]
BINDING = "herewithRecorderEvent"  # window.herewithRecorderEvent(json) in recorder.js
_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


class RecorderError(Exception):
    """A recorder did not come up or its browser stopped answering."""


def _child_setup(read_fd: int, write_fd: int) -> Callable[[], None]:
    """Runs in the child between fork and exec: the DevTools pipe on fds 3 (commands in) and 4 (replies
    out), as ``--remote-debugging-pipe`` expects, and SIGTERM when the server dies."""

    def setup() -> None:
        high_read = fcntl.fcntl(read_fd, fcntl.F_DUPFD, 100)   # out of the way of 3 and 4 first
        high_write = fcntl.fcntl(write_fd, fcntl.F_DUPFD, 100)
        os.dup2(high_read, 3)
        os.dup2(high_write, 4)
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return setup


class _Browser:
    """One Chromium process and its DevTools pipe (messages are JSON texts ending with a NUL byte).

    ``on_event(method, params, session_id)`` gets every DevTools event. :meth:`call` raises
    :class:`RecorderError` on a protocol error, a timeout (seconds) or a closed pipe.
    """

    def __init__(self, binary: str, workdir: Path, flags: list[str],
                 on_event: Callable[[str, dict[str, Any], str | None], None]) -> None:
        self.binary = binary
        self.workdir = workdir
        self.flags = flags
        self.on_event = on_event
        self.proc: asyncio.subprocess.Process | None = None
        self._writer: asyncio.WriteTransport | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self.closed = asyncio.Event()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    @property
    def log_path(self) -> Path:
        return self.workdir / "chromium.log"

    def log_tail(self, n: int = 1500) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        return ""

    async def launch(self) -> None:
        """Start Chromium and wait until it answers ``Browser.getVersion``."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        logf = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = await asyncio.create_subprocess_exec(
                self.binary, *self.flags, "--remote-debugging-pipe", f"--user-data-dir={self.workdir / 'profile'}",
                "about:blank",
                stdin=asyncio.subprocess.DEVNULL, stdout=logf, stderr=asyncio.subprocess.STDOUT,
                pass_fds=(3, 4), preexec_fn=_child_setup(to_child_r, from_child_w),
                start_new_session=True, cwd=str(self.workdir),
            )
        except BaseException:
            for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
                os.close(fd)
            raise
        finally:
            logf.close()
        os.close(to_child_r)
        os.close(from_child_w)
        replies = os.fdopen(from_child_r, "rb", 0)   # closed with their transports (or here, on failure)
        commands = os.fdopen(to_child_w, "wb", 0)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
        try:
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), replies)
            self._writer, _ = await loop.connect_write_pipe(asyncio.Protocol, commands)
        except BaseException:
            replies.close()
            commands.close()
            raise
        self._reader_task = asyncio.create_task(self._read(reader), name=f"chromium-pipe-{self.proc.pid}")
        await self.call("Browser.getVersion", timeout=10.0)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.readuntil(b"\0")
                try:
                    msg = json.loads(data[:-1])
                except ValueError:
                    continue
                if "id" in msg:
                    fut = self._pending.pop(msg["id"], None)
                    if fut is not None and not fut.done():
                        if "error" in msg:
                            fut.set_exception(RecorderError(f"DevTools error: {msg['error'].get('message')}"))
                        else:
                            fut.set_result(msg.get("result") or {})
                elif "method" in msg:
                    try:
                        self.on_event(msg["method"], msg.get("params") or {}, msg.get("sessionId"))
                    except Exception:  # noqa: BLE001 - a handler bug must not stop the pipe
                        log.exception("recorder_event_handler_failed", method=msg["method"])
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self.closed.set()
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(RecorderError("the browser closed its DevTools pipe"))
            self._pending.clear()

    async def call(self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None,
                   timeout: float = 10.0) -> dict[str, Any]:
        """Send one DevTools command and wait for its result (at most ``timeout`` seconds)."""
        if self._writer is None or self._writer.is_closing() or self.closed.is_set():
            raise RecorderError("the browser is not running")
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id:
            msg["sessionId"] = session_id
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = fut
        self._writer.write(json.dumps(msg).encode() + b"\0")
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self._pending.pop(msg["id"], None)
            raise RecorderError(f"{method} got no answer within {timeout:.0f}s") from None

    async def open_page(self, url: str) -> str:
        """A page in a fresh browser context, with the recorder binding, navigated to ``url``; its session id."""
        ctx = await self.call("Target.createBrowserContext", {"disposeOnDetach": True})
        target = await self.call("Target.createTarget", {"url": "about:blank", "browserContextId": ctx["browserContextId"]})
        session = (await self.call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}))["sessionId"]
        for method, params in (("Runtime.enable", {}), ("Inspector.enable", {}), ("Runtime.addBinding", {"name": BINDING}),
                               ("Page.enable", {})):
            await self.call(method, params, session)
        nav = await self.call("Page.navigate", {"url": url}, session, timeout=15.0)
        if nav.get("errorText"):
            raise RecorderError(f"the recorder page did not load: {nav['errorText']}")
        return str(session)

    async def evaluate(self, session_id: str, expression: str, timeout: float) -> Any:
        """Run ``expression`` in the page, awaiting a promise; its JSON value."""
        res = await self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True},
                              session_id, timeout=timeout)
        if res.get("exceptionDetails"):
            raise RecorderError(f"page error: {res['exceptionDetails'].get('text')}")
        return (res.get("result") or {}).get("value")

    async def close(self, timeout: float = 5.0) -> None:
        """``Browser.close``, then SIGTERM and SIGKILL to the process group if it lingers; the work dir goes."""
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(RecorderError):
                await self.call("Browser.close", timeout=min(2.0, timeout))
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, sig)
                    try:
                        await asyncio.wait_for(proc.wait(), 2.0)
                        break
                    except TimeoutError:
                        continue
        if proc is not None:
            # renderers and helpers left in its group after the browser process went (a kill -9 of it)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        await asyncio.to_thread(shutil.rmtree, self.workdir, True)


@dataclass
class _Recorder:
    """One recording's recorder: its browser (replaced on a restart) and what its page reported."""

    recording_id: str
    url: str
    generation: int = 0                 # +1 per browser launched for this recording
    restarts: int = 0
    browser: _Browser | None = None
    session: str | None = None
    joined: asyncio.Future[None] | None = None
    trouble: asyncio.Queue[tuple[int, str, str]] = field(default_factory=asyncio.Queue)
    stopping: bool = False
    started: asyncio.Event = field(default_factory=asyncio.Event)  # start() has returned
    supervisor: asyncio.Task[None] | None = None
    watcher: asyncio.Task[None] | None = None
    stop_task: asyncio.Task[None] | None = None
    phase: str = "starting"             # last phase the page reported: joined | recording | stopped | failed


class RecorderPool:
    """At most ``settings.recorders_per_node`` recorders at once, each a Chromium at ``settings.chromium_path``.

    ``on_lost(recording_id, reason)`` (sync or async; also settable as an attribute) is called when a
    recorder cannot go on (see the module docstring). ``start_timeout`` bounds a start (launch, page load,
    join; seconds); ``stop_timeout`` bounds the page's flush at stop; ``max_restarts`` per recording.
    ``extra_flags`` are added to :data:`CHROMIUM_FLAGS` (tests: fake devices, logging).
    """

    def __init__(self, settings: Settings, *, on_lost: LostCallback | None = None, start_timeout: float = 20.0,
                 stop_timeout: float = 25.0, max_restarts: int = 2, extra_flags: list[str] | None = None) -> None:
        self.settings = settings
        self.capacity = settings.recorders_per_node
        self.chromium_path = settings.chromium_path
        self.on_lost = on_lost
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.max_restarts = max_restarts
        self.flags = [*CHROMIUM_FLAGS, *(extra_flags or [])]
        self.workdir = Path(settings.data_dir) / "recorders"
        self._recorders: dict[str, _Recorder] = {}
        self._closed = False

    # -- what runs -------------------------------------------------------------------------------
    @property
    def busy(self) -> int:
        """Recorders in use (starting, recording or stopping)."""
        return len(self._recorders)

    @property
    def free(self) -> int:
        return max(0, self.capacity - len(self._recorders))

    def active(self, recording_id: str) -> bool:
        """True while a recorder runs (or starts) ``recording_id``."""
        rec = self._recorders.get(recording_id)
        return rec is not None and not rec.stopping

    def pids(self, recording_id: str) -> list[int]:
        """Process id of the browser recording ``recording_id`` (for benchmarks and tests), or []."""
        rec = self._recorders.get(recording_id)
        pid = rec.browser.pid if rec is not None and rec.browser is not None else None
        return [pid] if pid else []

    def phase(self, recording_id: str) -> str | None:
        rec = self._recorders.get(recording_id)
        return rec.phase if rec is not None else None

    # -- start -----------------------------------------------------------------------------------
    async def start(self, recording_id: str, page_url: str) -> bool:
        """Launch a recorder for ``recording_id`` on ``page_url`` (the recorder page, with its tokens).

        True once the page has joined the room (at most ``start_timeout`` seconds); False at once when every
        recorder is busy or the pool is closed, and False when Chromium or the page did not come up in time.
        True without a second browser when ``recording_id`` already has one.
        """
        if self._closed or self.capacity <= 0 or not os.path.exists(self.chromium_path):
            return False
        if recording_id in self._recorders:
            return not self._recorders[recording_id].stopping
        if len(self._recorders) >= self.capacity:
            return False
        rec = _Recorder(recording_id, page_url)
        self._recorders[recording_id] = rec
        try:
            ok = await self._open(rec)
        except asyncio.CancelledError:
            rec.started.set()
            await self._discard(rec)
            raise
        except Exception:  # noqa: BLE001 - whatever went wrong, the host hears "unavailable", nothing hangs
            log.exception("recorder_start_error", recording_id=recording_id)
            ok = False
        rec.started.set()
        if not ok:
            await self._discard(rec)
            return False
        if rec.stopping:  # stop() arrived meanwhile: it closes the browser
            return True
        rec.supervisor = asyncio.create_task(self._supervise(rec), name=f"recorder-{recording_id}")
        log.info("recorder_started", recording_id=recording_id, pid=rec.browser.pid if rec.browser else None)
        return True

    async def _open(self, rec: _Recorder) -> bool:
        """Launch a browser for ``rec``, open its page and wait for ``joined``; False (browser closed) on failure."""
        rec.generation += 1
        gen = rec.generation
        workdir = Path(tempfile.mkdtemp(prefix=f"{_SAFE.sub('_', rec.recording_id)[:40]}-{gen}-",
                                        dir=self._ensure_workdir()))
        browser = _Browser(self.chromium_path, workdir, self.flags,
                           lambda method, params, sid: self._on_event(rec, gen, method, params, sid))
        rec.browser = browser
        rec.session = None
        rec.phase = "starting"
        rec.joined = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self.start_timeout):
                await browser.launch()
                rec.session = await browser.open_page(rec.url)
                # joined, or Chromium gone meanwhile (its pipe closes): no waiting out the timeout for a dead one
                closed = asyncio.ensure_future(browser.closed.wait())
                try:
                    await asyncio.wait({rec.joined, closed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    closed.cancel()
                if not rec.joined.done():
                    raise RecorderError("chromium exited before the page joined")
                rec.joined.result()  # raises when the page reported a failure
        except (TimeoutError, RecorderError, OSError) as exc:
            log.warning("recorder_start_failed", recording_id=rec.recording_id, error=str(exc) or type(exc).__name__,
                        chromium=browser.log_tail(600))
            await browser.close()
            return False
        rec.watcher = asyncio.create_task(self._watch(rec, gen, browser), name=f"recorder-watch-{rec.recording_id}")
        return True

    def _ensure_workdir(self) -> str:
        self.workdir.mkdir(parents=True, exist_ok=True)
        return str(self.workdir)

    async def _watch(self, rec: _Recorder, gen: int, browser: _Browser) -> None:
        assert browser.proc is not None
        code = await browser.proc.wait()
        rec.trouble.put_nowait((gen, "crashed", f"chromium exited with {code}"))

    def _on_event(self, rec: _Recorder, gen: int, method: str, params: dict[str, Any], session_id: str | None) -> None:
        """DevTools events of ``rec``'s browser generation ``gen`` -> its join future and trouble queue."""
        if method == "Runtime.bindingCalled" and params.get("name") == BINDING:
            try:
                event = json.loads(params.get("payload") or "{}")
            except ValueError:
                return
            kind = str(event.get("type") or "")
            detail = str(event.get("detail") or "")
            if kind in ("joined", "recording", "stopped", "failed"):
                rec.phase = kind
            if kind == "joined" and rec.joined is not None and not rec.joined.done():
                rec.joined.set_result(None)
            elif kind == "failed":
                if rec.joined is not None and not rec.joined.done():
                    rec.joined.set_exception(RecorderError(f"the recorder page failed: {detail}"))
                else:
                    rec.trouble.put_nowait((gen, "failed", detail))
            elif kind == "stopped":
                rec.trouble.put_nowait((gen, "stopped", detail))
            elif kind == "recording":
                log.info("recorder_recording", recording_id=rec.recording_id)
        elif method == "Inspector.targetCrashed":
            rec.trouble.put_nowait((gen, "crashed", "the recorder page crashed"))
        elif method == "Target.detachedFromTarget" and session_id is None and params.get("sessionId") == rec.session:
            rec.trouble.put_nowait((gen, "crashed", "the recorder page went away"))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails") or {}
            text = (details.get("exception") or {}).get("description") or details.get("text")
            log.warning("recorder_page_exception", recording_id=rec.recording_id, error=str(text)[:500])
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args") or [])
            log.warning("recorder_page_console", recording_id=rec.recording_id, level=params.get("type"), text=text[:500])

    # -- supervision -----------------------------------------------------------------------------
    async def _supervise(self, rec: _Recorder) -> None:
        """Wait for trouble in the current browser generation: restart after a crash, else give up."""
        while True:
            gen, kind, detail = await rec.trouble.get()
            if rec.stopping:
                return
            if gen != rec.generation:
                continue  # from a browser already replaced
            if kind == "stopped":  # the page ended the recording itself (state stopped, meeting ended)
                log.info("recorder_page_stopped", recording_id=rec.recording_id)
                await self._retire(rec, lost=None)
                return
            if kind == "crashed" and rec.restarts < self.max_restarts:
                rec.restarts += 1
                log.warning("recorder_restarting", recording_id=rec.recording_id, reason=detail, restart=rec.restarts,
                            chromium=rec.browser.log_tail(600) if rec.browser else "")
                if rec.browser is not None:
                    await rec.browser.close()
                if rec.watcher is not None:
                    rec.watcher.cancel()
                if rec.stopping:
                    return
                if await self._open(rec):
                    continue
                detail = f"{detail}; the restart failed"
            log.error("recorder_lost", recording_id=rec.recording_id, reason=detail)
            await self._retire(rec, lost=f"{kind}: {detail}")
            return

    async def _retire(self, rec: _Recorder, lost: str | None) -> None:
        """Close ``rec``'s browser, free its slot, and tell ``on_lost`` when it ended unasked."""
        rec.stopping = True
        if rec.watcher is not None:
            rec.watcher.cancel()
        if rec.browser is not None:
            await rec.browser.close()
        if self._recorders.get(rec.recording_id) is rec:
            del self._recorders[rec.recording_id]
        if lost is not None and self.on_lost is not None:
            try:
                result = self.on_lost(rec.recording_id, lost)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001
                log.exception("recorder_on_lost_failed", recording_id=rec.recording_id)

    async def _discard(self, rec: _Recorder) -> None:
        rec.stopping = True
        if rec.watcher is not None:
            rec.watcher.cancel()
        if rec.browser is not None:
            await rec.browser.close()
        if self._recorders.get(rec.recording_id) is rec:
            del self._recorders[rec.recording_id]

    # -- stop ------------------------------------------------------------------------------------
    async def stop(self, recording_id: str) -> None:
        """Stop ``recording_id``'s recorder: the page stops its MediaRecorders (their last chunks go out) and
        closes its ingest sockets (at most ``stop_timeout`` seconds), then Chromium exits and the slot is free.
        Idempotent; nothing happens for an unknown id."""
        rec = self._recorders.get(recording_id)
        if rec is None:
            return
        if rec.stop_task is None:
            rec.stop_task = asyncio.create_task(self._stop(rec), name=f"recorder-stop-{recording_id}")
        await asyncio.shield(rec.stop_task)

    async def _stop(self, rec: _Recorder) -> None:
        rec.stopping = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rec.started.wait(), self.start_timeout + 5)
        sup = rec.supervisor
        if sup is not None and sup is not asyncio.current_task():
            sup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sup
        browser = rec.browser
        if browser is not None and rec.session is not None and browser.pid is not None:
            try:
                result = await browser.evaluate(
                    rec.session, "window.herewithRecorder ? window.herewithRecorder.stop() : null", self.stop_timeout)
                log.info("recorder_stopped", recording_id=rec.recording_id, result=result)
            except RecorderError as exc:
                log.warning("recorder_stop_incomplete", recording_id=rec.recording_id, error=str(exc))
        await self._discard(rec)

    async def close(self) -> None:
        """Stop every recording (in parallel, each bounded by ``stop_timeout``) and refuse new ones."""
        self._closed = True
        await asyncio.gather(*(self.stop(rid) for rid in list(self._recorders)), return_exceptions=True)
