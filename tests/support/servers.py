"""Real Herewith servers for tests, on 127.0.0.1 with a free port.

- :class:`ThreadServer`: uvicorn in a background thread running ``create_app(settings, clock)``; tests can
  move ``server.clock`` and reach ``server.app.state``.
- :class:`ProcessServer`: ``herewith serve`` as a child process, for crash (``kill -9``) and multi-process tests.
Both answer real HTTP and WebSocket traffic.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn

from herewith.app import create_app
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
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", ws_max_size=64 * 1024)
        )
        self._thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

        async def remember_loop(_app) -> None:  # noqa: ANN001
            self.loop = asyncio.get_running_loop()

        self.app.state.startup_hooks.append(remember_loop)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> ThreadServer:
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_healthy(self.base_url)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread:
            self._thread.join(timeout=15)

    def run_coro(self, coro):  # noqa: ANN001, ANN201 - run a coroutine on the server's event loop
        """Run ``coro`` on the server's loop (for reaching ``app.state`` objects bound to that loop)."""
        assert self.loop is not None, "server not started"
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)


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
        env = {**os.environ, **self.env, "HEREWITH_PORT": str(self.port), "HEREWITH_HOST": "127.0.0.1"}
        env.pop("HEREWITH_PUBLIC_URL", None)
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        pin = ["taskset", "-c", self.cpus] if self.cpus else []
        self.proc = subprocess.Popen(
            [*pin, sys.executable, "-m", "herewith", "serve"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        wait_healthy(self.base_url, timeout, self.proc)
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()


def run_sync(coro):  # noqa: ANN001, ANN201
    """Run a coroutine to completion from sync or async code (in a fresh thread with its own loop)."""
    result: list = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            error.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0] if result else None


PG_ADMIN = dict(host="127.0.0.1", port=5432, user=os.environ.get("PGUSER", "root"), database="postgres")


def create_pg_database() -> str:
    """Create a fresh PostgreSQL database on 127.0.0.1:5432; return its SQLAlchemy URL."""
    import asyncpg

    name = "herewith_t_" + uuid.uuid4().hex[:12]

    async def create() -> None:
        conn = await asyncpg.connect(**PG_ADMIN)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    run_sync(create())
    return f"postgresql+asyncpg://{PG_ADMIN['user']}@127.0.0.1:5432/{name}"


def drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]

    async def drop() -> None:
        conn = await asyncpg.connect(**PG_ADMIN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    run_sync(drop())
