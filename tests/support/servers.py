"""Real Herewith servers for tests, on 127.0.0.1 with a free port.

- :class:`ThreadServer`: uvicorn in a background thread running ``create_app(settings, clock)``; tests can
  move ``server.clock`` and reach ``server.services``.
- :class:`ProcessServer`: ``herewith serve`` as a child process, for crash (``kill -9``) and multi-process tests.
Both answer real HTTP and WebSocket traffic.

Every wait here has a deadline, so a stuck server or database makes the test fail with a message instead of
hanging the session. Child servers a test leaves running are killed after it (``tests/conftest.py``) and at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn

from herewith.app import create_app, services_of
from herewith.auth import service as auth_service
from herewith.config import Settings
from herewith.db.engine import create_engine, create_sessionmaker
from herewith.db.migrate import upgrade
from herewith.kit.time import Clock


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class OrgKey:
    organization_id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


async def create_org_key(settings: Settings, name: str = "Test org", plan: str = "grow") -> OrgKey:
    """Create an organization with one API key directly in the server's database."""
    engine = create_engine(settings)
    try:
        await upgrade(engine)
        async with create_sessionmaker(engine)() as session:
            org = await auth_service.create_organization(session, name, plan)
            _, key = await auth_service.create_api_key(session, org.id)
            await session.commit()
            return OrgKey(org.id, key)
    finally:
        await engine.dispose()


def wait_healthy(base_url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(base_url + "/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{base_url} did not become healthy in {timeout}s")


@dataclass
class ThreadServer:
    settings: Settings
    clock: Clock = field(default_factory=Clock)
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.settings = self.settings.model_copy(update={"port": self.port, "public_url": f"http://127.0.0.1:{self.port}"})
        self.app = create_app(self.settings, self.clock)
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                           ws_max_size=max(64 * 1024, self.settings.signaling_max_answer_bytes))
        )
        self._thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.services = services_of(self.app)

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self._server.serve()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> ThreadServer:
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        self._thread.start()
        wait_healthy(self.base_url)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread:
            self._thread.join(timeout=15)

    def run_coro(self, coro):  # noqa: ANN001, ANN201 - run a coroutine on the server's event loop
        """Run ``coro`` on the server's loop (for reaching ``self.services`` parts bound to that loop)."""
        assert self.loop is not None, "server not started"
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)


_RUNNING: list[ProcessServer] = []  # started and not yet seen dead: what kill_leftover_servers() kills


@dataclass
class ProcessServer:
    """``herewith serve`` in a child process with its own environment."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    cpus: str | None = None  # run pinned to these CPUs (taskset list, e.g. "0"); benchmarks use it

    def __post_init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ProcessServer:
        """Start the child and wait until ``/healthz`` answers; if it does not within ``timeout`` seconds (or the
        child exits), kill it and raise with the end of its log."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = {**os.environ, **self.env, "HEREWITH_PORT": str(self.port), "HEREWITH_HOST": "127.0.0.1"}
        env.pop("HEREWITH_PUBLIC_URL", None)
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
        pin = ["taskset", "-c", self.cpus] if self.cpus else []
        try:
            self.proc = subprocess.Popen(
                [*pin, sys.executable, "-m", "herewith", "serve"], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # the child has its own descriptor
        if not any(s is self for s in _RUNNING):
            _RUNNING.append(self)
        try:
            wait_healthy(self.base_url, timeout, self.proc)
        except (RuntimeError, TimeoutError) as exc:
            self._kill()
            raise type(exc)(f"herewith serve on port {self.port}: {exc}{self._log_tail()}") from None
        except BaseException:  # pytest-timeout's Failed, KeyboardInterrupt: no child left behind either
            self._kill()
            raise
        return self

    def kill9(self, timeout: float = 10.0) -> None:
        """SIGKILL the child and reap it; raise if it is still there after ``timeout`` seconds."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"herewith serve (pid {self.proc.pid}) still alive {timeout}s after SIGKILL") from None
        self._forget()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if the child has not exited after ``timeout`` seconds."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        self._forget()

    def _kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                return  # stays in _RUNNING: tried again after the test and at exit
        self._forget()

    def _forget(self) -> None:
        _RUNNING[:] = [s for s in _RUNNING if s is not self]

    def _log_tail(self, lines: int = 30) -> str:
        if not self.log_path or not self.log_path.exists():
            return " (no log: pass log_path to see the server's output)"
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"; last lines of {self.log_path}:\n" + "\n".join(tail)


def running_servers() -> list[ProcessServer]:
    """The :class:`ProcessServer` children started and not stopped yet."""
    return list(_RUNNING)


def kill_leftover_servers(keep: Sequence[ProcessServer] = ()) -> list[str]:
    """SIGKILL every :class:`ProcessServer` child still running but those in ``keep`` (e.g. what ran before a
    test that failed before its ``stop()``); return a description of each one killed."""
    killed = []
    for srv in list(_RUNNING):
        if any(srv is k for k in keep):
            continue
        if srv.proc is not None and srv.proc.poll() is None:
            killed.append(f"pid {srv.proc.pid} on port {srv.port}")
        srv._kill()
    return killed


atexit.register(kill_leftover_servers)

RUN_SYNC_TIMEOUT = 120.0


def run_sync(coro, timeout: float | None = RUN_SYNC_TIMEOUT):  # noqa: ANN001, ANN201
    """Run a coroutine to completion from sync or async code (in a fresh thread with its own loop).

    ``timeout`` (seconds, ``None`` for none) is a deadline: the coroutine is cancelled inside its own loop and
    ``TimeoutError`` raised here. A coroutine that cannot be cancelled (blocked in a synchronous call) is
    abandoned 10 s later in its daemon thread, which cannot keep the process alive.
    """
    name = getattr(coro, "__qualname__", repr(coro))
    result: list = []
    error: list[BaseException] = []
    expired = threading.Event()

    async def bounded():  # noqa: ANN202
        if timeout is None:
            return await coro
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                return await coro
        finally:
            if deadline.expired():
                expired.set()

    def target() -> None:
        try:
            result.append(asyncio.run(bounded()))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            error.append(exc)

    t = threading.Thread(target=target, name=f"run_sync {name}", daemon=True)
    t.start()
    t.join(None if timeout is None else timeout + 10)
    if t.is_alive():
        raise TimeoutError(f"run_sync: {name} still running {timeout + 10:.0f}s after it started "
                           "(blocked outside its event loop, so the deadline could not cancel it)")
    if error:
        if expired.is_set() and isinstance(error[0], TimeoutError):
            raise TimeoutError(f"run_sync: {name} did not finish within {timeout}s") from error[0]
        raise error[0]
    return result[0] if result else None


PG_ADMIN = dict(host="127.0.0.1", port=5432, user=os.environ.get("PGUSER", "root"), database="postgres")
PG_TIMEOUT = 60.0  # seconds for connecting and for each CREATE/DROP DATABASE


def create_pg_database() -> str:
    """Create a fresh PostgreSQL database on 127.0.0.1:5432; return its SQLAlchemy URL."""
    import asyncpg

    name = "herewith_t_" + uuid.uuid4().hex[:12]

    async def create() -> None:
        conn = await asyncpg.connect(**PG_ADMIN, timeout=PG_TIMEOUT)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"', timeout=PG_TIMEOUT)
        finally:
            await conn.close(timeout=10)

    run_sync(create(), timeout=2 * PG_TIMEOUT + 20)
    return f"postgresql+asyncpg://{PG_ADMIN['user']}@127.0.0.1:5432/{name}"


def drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]

    async def drop() -> None:
        conn = await asyncpg.connect(**PG_ADMIN, timeout=PG_TIMEOUT)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', timeout=PG_TIMEOUT)
        finally:
            await conn.close(timeout=10)

    run_sync(drop(), timeout=2 * PG_TIMEOUT + 20)
