"""Run a local Janus as a supervised child process with a generated, locked-down configuration.

``herewith serve`` uses this when the ``janus`` binary is on the PATH and no external instance is
configured (group rooms on the SFU, DESIGN.md "Components"). The generated configuration:

* loads only the VideoRoom plugin and the WebSocket and HTTP transports (the API on both, the admin API
  on HTTP only; all bound to 127.0.0.1 by default), no event handlers, no loggers. Herewith's clients
  use the WebSocket (``transport="websocket"``, the default: one connection carries every session, where
  HTTP needs one long poll per session); ``transport="http"`` makes :attr:`JanusSupervisor.url` the
  HTTP one instead;
* protects the API with a random ``api_secret`` and the admin API with a random ``admin_secret``; turns
  on ``token_auth`` so that Herewith can hand out per-participant tokens (``add_token``) that are good
  for the VideoRoom plugin only (Janus accepts a request carrying either the api_secret or a valid
  token);
* sets the VideoRoom ``admin_key`` so that only Herewith can create rooms (``lock_rtp_forward`` too);
* keeps ICE simple: no STUN/TURN, mDNS candidates ignored, optional ``ice_enforce_list`` (the test
  network namespace needs ``"v0"``: libnice refuses the ``lo`` interface).

Janus keeps rooms created through the API in memory only, so when the process dies the supervisor
starts it again and then calls ``on_restart(supervisor)`` so the control plane can recreate its rooms.

Usage::

    sup = JanusSupervisor("/var/lib/herewith/janus", on_restart=recreate_rooms)
    await sup.start()                  # returns once Janus answers `info`
    client = sup.client()              # JanusClient with the api and admin secrets
    ...
    await sup.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import glob
import inspect
import logging
import os
import secrets
import shutil
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from herewith.media.janus import VIDEOROOM, JanusClient, JanusError, JanusUnavailable

__all__ = ["JanusStartError", "JanusSupervisor", "find_janus_lib_dir", "free_port"]

log = logging.getLogger(__name__)

RestartCallback = Callable[["JanusSupervisor"], Awaitable[None] | None]

_KEEP_PLUGINS = {"libjanus_videoroom.so"}
_KEEP_TRANSPORTS = {"libjanus_http.so", "libjanus_websockets.so"}
TRANSPORTS = ("websocket", "http")


class JanusStartError(RuntimeError):
    """Janus did not start (binary missing, exited at once, or no ``info`` answer in time)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def find_janus_lib_dir() -> Path | None:
    """Where Janus's ``plugins/`` and ``transports/`` live (Debian: ``/usr/lib/<triplet>/janus``)."""
    candidates = [*glob.glob("/usr/lib/*/janus"), "/usr/lib/janus", "/usr/local/lib/janus", "/opt/janus/lib/janus"]
    for c in candidates:
        if os.path.isfile(os.path.join(c, "plugins", "libjanus_videoroom.so")):
            return Path(c)
    return None


def _others(folder: Path, keep: set[str]) -> str:
    """Comma list of the unversioned ``.so`` files in ``folder`` that are not in ``keep``."""
    if not folder.is_dir():
        return ""
    return ",".join(sorted(p.name for p in folder.glob("*.so") if p.name not in keep))


def _set_parent_death_signal() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class JanusSupervisor:
    """Writes a Janus configuration into ``workdir``, runs ``janus`` and restarts it when it dies.

    Ports are TCP ports on ``bind`` (0 = pick a free one at construction; they stay the same across
    restarts so clients keep working). ``transport`` (``websocket`` or ``http``) is the API transport
    :attr:`url` and :meth:`client` use; both are served. ``rtp_ports`` is the inclusive UDP range for media.
    ``api_secret``, ``admin_secret`` and ``admin_key`` are generated randomly (per supervisor) unless
    given. ``on_restart`` is called (awaited if it is a coroutine function) after Janus was restarted and
    answers again; it gets the supervisor. ``startup_timeout`` is in seconds.

    Attributes after :meth:`start`: ``url``, ``admin_url``, ``pid``, ``restarts`` (how many times it was
    restarted), ``generation`` (1 for the first process, +1 per restart), ``log_path``.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        http_port: int = 0,
        ws_port: int = 0,
        admin_port: int = 0,
        transport: str = "websocket",
        bind: str = "127.0.0.1",
        rtp_ports: tuple[int, int] = (20000, 40000),
        api_secret: str | None = None,
        admin_secret: str | None = None,
        admin_key: str | None = None,
        token_auth: bool = True,
        ice_enforce_list: str | None = None,
        ice_ignore_list: str | None = "vmnet",
        nat_1_1_mapping: str | None = None,
        ipv6: bool = False,
        debug_level: int = 4,
        session_timeout: int = 60,
        binary: str = "janus",
        lib_dir: str | os.PathLike[str] | None = None,
        on_restart: RestartCallback | None = None,
        startup_timeout: float = 15.0,
        restart_backoff: tuple[float, float] = (0.2, 5.0),
    ) -> None:
        self.workdir = Path(workdir)
        self.bind = bind
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}: {transport!r}")
        self.transport = transport
        self.http_port = http_port or free_port(bind)
        self.ws_port = ws_port or free_port(bind)
        self.admin_port = admin_port or free_port(bind)
        self.rtp_ports = rtp_ports
        self.api_secret = api_secret or secrets.token_urlsafe(24)
        self.admin_secret = admin_secret or secrets.token_urlsafe(24)
        self.admin_key = admin_key or secrets.token_urlsafe(24)
        self.token_auth = token_auth
        self.ice_enforce_list = ice_enforce_list
        self.ice_ignore_list = ice_ignore_list
        self.nat_1_1_mapping = nat_1_1_mapping
        self.ipv6 = ipv6
        self.debug_level = debug_level
        self.session_timeout = session_timeout
        self.binary = binary
        self.lib_dir = Path(lib_dir) if lib_dir else find_janus_lib_dir()
        self.on_restart: list[RestartCallback] = [on_restart] if on_restart else []
        self.startup_timeout = startup_timeout
        self.restart_backoff = restart_backoff
        self.restarts = 0
        self.generation = 0
        self.restarted = asyncio.Event()  # set (and cleared again by the next death) after each restart
        self._proc: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False
        self._probe: JanusClient | None = None

    # -- addresses -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The Janus API root of ``transport``: :attr:`ws_url` or :attr:`http_url`."""
        return self.ws_url if self.transport == "websocket" else self.http_url

    @property
    def ws_url(self) -> str:
        """The WebSocket API, e.g. ``ws://127.0.0.1:8188``."""
        return f"ws://{self.bind}:{self.ws_port}"

    @property
    def http_url(self) -> str:
        """The HTTP API root, e.g. ``http://127.0.0.1:8088/janus``."""
        return f"http://{self.bind}:{self.http_port}/janus"

    @property
    def admin_url(self) -> str:
        """The admin API root, e.g. ``http://127.0.0.1:7088/admin``."""
        return f"http://{self.bind}:{self.admin_port}/admin"

    @property
    def pid(self) -> int | None:
        """Process id of the running Janus, or None."""
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def log_path(self) -> Path:
        return self.workdir / "janus.log"

    def client(self, *, timeout: float = 10.0, transport: str | None = None) -> JanusClient:
        """A new :class:`JanusClient` for this instance holding the api and admin secrets (close it yourself).

        ``timeout`` is the per-request timeout in seconds; ``transport`` (``websocket`` | ``http``)
        overrides the supervisor's.
        """
        url = {"websocket": self.ws_url, "http": self.http_url}[transport or self.transport]
        return JanusClient(url, self.api_secret, self.admin_url, self.admin_secret, timeout=timeout)

    # -- configuration ---------------------------------------------------------------------------
    def write_config(self) -> Path:
        """Write ``janus.jcfg``, the WebSocket and HTTP transport and the VideoRoom configurations; returns
        ``janus.jcfg``.

        Raises :class:`JanusStartError` when Janus's plugin folder cannot be found.
        """
        if self.lib_dir is None:
            raise JanusStartError("Janus plugins not found (looked in /usr/lib/*/janus, /usr/local/lib/janus)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        lib = self.lib_dir
        nat = ["\tignore_mdns = true", "\tnice_debug = false"]
        if self.ice_enforce_list:
            nat.append(f'\tice_enforce_list = "{self.ice_enforce_list}"')
        elif self.ice_ignore_list:
            nat.append(f'\tice_ignore_list = "{self.ice_ignore_list}"')
        if self.nat_1_1_mapping:
            nat.append(f'\tnat_1_1_mapping = "{self.nat_1_1_mapping}"')
        nl = "\n"
        files = {
            "janus.jcfg": f"""\
general: {{
	configs_folder = "{self.workdir}"
	plugins_folder = "{lib}/plugins"
	transports_folder = "{lib}/transports"
	events_folder = "{lib}/events"
	loggers_folder = "{lib}/loggers"
	debug_level = {self.debug_level}
	debug_timestamps = true
	server_name = "herewith"
	session_timeout = {self.session_timeout}
	api_secret = "{self.api_secret}"
	admin_secret = "{self.admin_secret}"
	token_auth = {str(self.token_auth).lower()}
	protected_folders = [ "/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/sbin", "/sys", "/usr", "/var" ]
}}
certificates: {{ }}
media: {{
	ipv6 = {str(self.ipv6).lower()}
	rtp_port_range = "{self.rtp_ports[0]}-{self.rtp_ports[1]}"
}}
nat: {{
{nl.join(nat)}
}}
plugins: {{ disable = "{_others(lib / 'plugins', _KEEP_PLUGINS)}" }}
transports: {{ disable = "{_others(lib / 'transports', _KEEP_TRANSPORTS)}" }}
loggers: {{ disable = "{_others(lib / 'loggers', set())}" }}
events: {{
	broadcast = false
	disable = "{_others(lib / 'events', set())}"
}}
""",
            "janus.transport.http.jcfg": f"""\
general: {{
	json = "plain"
	base_path = "/janus"
	http = true
	port = {self.http_port}
	ip = "{self.bind}"
	https = false
}}
admin: {{
	admin_base_path = "/admin"
	admin_http = true
	admin_port = {self.admin_port}
	admin_ip = "{self.bind}"
	admin_https = false
}}
cors: {{ }}
""",
            "janus.transport.websockets.jcfg": f"""\
general: {{
	json = "plain"
	ws = true
	ws_port = {self.ws_port}
	ws_ip = "{self.bind}"
	wss = false
	ws_logging = "err"
}}
admin: {{
	admin_ws = false
	admin_wss = false
}}
cors: {{ }}
""",
            "janus.plugin.videoroom.jcfg": f"""\
general: {{
	admin_key = "{self.admin_key}"
	lock_rtp_forward = true
}}
""",
        }
        for name, text in files.items():
            path = self.workdir / name
            path.write_text(text)
            path.chmod(0o600)  # holds the secrets
        return self.workdir / "janus.jcfg"

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Write the configuration, start Janus, wait until it answers ``info``, and start watching it.

        Raises :class:`JanusStartError` if it does not come up within ``startup_timeout`` seconds.
        """
        if shutil.which(self.binary) is None:
            raise JanusStartError(f"{self.binary!r} not found on PATH")
        self._stopping = False
        self.write_config()
        self._probe = JanusClient(self.url, self.api_secret, timeout=2.0)
        await self._spawn()
        self._watch = asyncio.create_task(self._watch_loop(), name="janus-supervisor")

    async def _spawn(self) -> None:
        cfg = self.workdir / "janus.jcfg"
        logf = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self._proc = await asyncio.create_subprocess_exec(
                self.binary, "-C", str(cfg), "-F", str(self.workdir), "-o",
                stdin=asyncio.subprocess.DEVNULL, stdout=logf, stderr=asyncio.subprocess.STDOUT,
                preexec_fn=_set_parent_death_signal,
                cwd=str(self.workdir),  # a crash's core file lands in the work dir, not the caller's cwd
            )
        finally:
            logf.close()
        self.generation += 1
        try:
            await self._wait_ready()
        except JanusStartError:
            await self._kill()
            raise
        log.info("janus started pid=%s url=%s generation=%s", self._proc.pid, self.url, self.generation)

    async def _wait_ready(self) -> None:
        assert self._proc is not None and self._probe is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.returncode is not None:
                raise JanusStartError(f"janus exited with {self._proc.returncode}: {self._log_tail()}")
            with contextlib.suppress(JanusUnavailable, JanusError):
                info = await self._probe.info()
                if VIDEOROOM in (info.get("plugins") or {}):
                    return
                raise JanusStartError(f"janus runs without the VideoRoom plugin: {self._log_tail()}")
            await asyncio.sleep(0.05)
        raise JanusStartError(f"janus did not answer within {self.startup_timeout}s: {self._log_tail()}")

    def _log_tail(self, n: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        return ""

    async def _watch_loop(self) -> None:
        backoff = self.restart_backoff[0]
        while not self._stopping:
            assert self._proc is not None
            started = time.monotonic()
            code = await self._proc.wait()
            if self._stopping:
                return
            self.restarted.clear()
            log.warning("janus pid=%s exited with %s; restarting", self._proc.pid, code)
            if time.monotonic() - started > 30:
                backoff = self.restart_backoff[0]
            while not self._stopping:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.restart_backoff[1])
                try:
                    await self._spawn()
                    break
                except (JanusStartError, OSError) as exc:
                    log.error("janus restart failed: %s", exc)
            if self._stopping:
                return
            self.restarts += 1
            self.restarted.set()
            for cb in list(self.on_restart):
                try:
                    result = cb(self)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("janus on_restart callback failed")

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop watching and terminate Janus (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        await self._kill(timeout)
        if self._probe is not None:
            await self._probe.aclose()
            self._probe = None

    async def _kill(self, timeout: float = 5.0) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def __aenter__(self) -> JanusSupervisor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
