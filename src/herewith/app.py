"""``create_app()``: the ASGI application and its lifespan (engine, migrations, background tasks).

Usage::

    app = create_app(Settings(data_dir=Path("data")))
    uvicorn.run(app, host="127.0.0.1", port=8080)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse

from herewith import __version__, errors
from herewith.config import Settings
from herewith.db.engine import create_engine, create_sessionmaker
from herewith.db.migrate import upgrade
from herewith.kit.asgi import BodySizeLimit
from herewith.kit.time import Clock
from herewith.kit.logs import configure_logging
from herewith.meetings.endpoints import router as meetings_router
from herewith.ratelimit.http import enforce_rate_limit, install as install_ratelimit

log = structlog.get_logger(__name__)

# Callables run at start-up with the app; each may return background coroutines to run until shutdown.
StartupHook = Callable[[FastAPI], Awaitable[None]]


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Build the app. ``settings`` default to the environment; ``clock`` lets tests move time."""
    settings = settings or Settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        await upgrade(engine)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        for hook in app.state.startup_hooks:
            await hook(app)
        log.info("started", database=engine.dialect.name, public_url=settings.public_url)
        try:
            yield
        finally:
            for task in app.state.background_tasks:
                task.cancel()
            await asyncio.gather(*app.state.background_tasks, return_exceptions=True)
            for hook in app.state.shutdown_hooks:
                await hook(app)
            await engine.dispose()

    app = FastAPI(
        title="Herewith",
        version=__version__,
        summary="Self-hosted video meeting rooms with a Whereby-compatible REST API (v1).",
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock or Clock()
    app.state.startup_hooks: list[StartupHook] = []
    app.state.shutdown_hooks: list[StartupHook] = []
    app.state.background_tasks: list[asyncio.Task[Any]] = []
    # Called as hook(meeting, reason) after a meeting was deleted ("deleted") or deactivated ("expired"):
    # signaling ends the call for everyone in it, media destroys SFU rooms.
    app.state.meeting_deleted_hooks: list[Callable[[Any, str], Awaitable[None]]] = []
    # Sinks of herewith.signaling.events.RoomEvent (room sessions, insights, webhooks).
    app.state.room_event_sinks: list[Callable[[Any], Awaitable[None]]] = []
    errors.install(app)
    install_ratelimit(app, settings)

    api = APIRouter(prefix="/v1", dependencies=[Depends(enforce_rate_limit)])
    api.include_router(meetings_router)
    app.include_router(api)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory herewith.app:app_factory``."""
    return create_app()
