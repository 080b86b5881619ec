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
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse

from herewith import __version__, errors
from herewith.config import Settings
from herewith.db.engine import create_engine, create_hot_engine, create_sessionmaker, sqlite_path, writer_lock
from herewith.db.sqlite_inline import InlineReader, run_checkpointer
from herewith.db.migrate import upgrade
from herewith.kit.asgi import BodySizeLimit
from herewith.kit.json_body import register_body_schemas
from herewith.kit.time import Clock
from herewith.kit.logs import configure_logging
from herewith.auth.service import ApiKeyAuthenticator
from herewith.meetings.endpoints import identified_router as meetings_identified_router, router as meetings_router
from herewith.meetings.schemas import CreateMeetingRequest
from herewith.meetings.service import MeetingStore
from herewith.insights.endpoints import router as insights_router
from herewith.webhooks.endpoints import router as webhooks_router
from herewith.webhooks.setup import install as install_sessions_and_webhooks
from herewith.auth.dependencies import get_organization
from herewith.ratelimit.http import install as install_ratelimit
from herewith.rooms.theme_endpoints import install as install_theming, router as theme_router

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
        # The per-request lookups of the hot calls: batched per event-loop tick (auth and meetings), or on
        # SQLite synchronous point reads on a connection of their own (see db/sqlite_inline.py).
        inline = None
        if engine.dialect.name == "sqlite":
            path = sqlite_path(settings.sqlalchemy_url)
            inline = InlineReader(path)
            # WAL checkpoints off the event loop (see db/sqlite_inline.py)
            app.state.background_tasks.append(asyncio.create_task(run_checkpointer(path, writer=writer_lock(engine))))
        hot_engine = create_hot_engine(settings, engine)
        app.state.authenticator = ApiKeyAuthenticator(hot_engine, inline=inline)
        app.state.meeting_store = MeetingStore(hot_engine, inline=inline)
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
            if inline is not None:
                inline.close()
            if hot_engine is not engine:
                await hot_engine.dispose()
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
    install_sessions_and_webhooks(app)  # room sessions sink, lifecycle sweeper, webhook delivery

    # Every /v1 call: Bearer key -> organization -> rate-limit charge (429 before the endpoint runs).
    # Each router is included in the app itself: FastAPI matches included routers level by level, and a
    # /v1 router wrapping these four cost a request about as much routing again (measured: bench/api.py).
    v1 = {"prefix": "/v1", "dependencies": [Depends(get_organization)]}
    # POST /v1/meetings and GET /v1/meetings/{id} authenticate and charge themselves (identify_request): their
    # statement checks the key (MeetingStore), so the key's identity may come from the authenticator's cache.
    app.include_router(meetings_identified_router, prefix="/v1")
    app.include_router(meetings_router, **v1)
    app.include_router(insights_router, **v1)  # GET /v1/insights/*
    app.include_router(webhooks_router, **v1)  # /v1/webhooks
    app.include_router(theme_router, **v1)  # room theming: PUT /v1/rooms/{roomName}/theme/*
    register_body_schemas(app, [CreateMeetingRequest])  # parsed by the endpoint (kit.json_body)
    install_theming(app)  # public /themes/* images and theme file clean-up

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    # Signaling WebSocket (/signal/{roomName}) and, last of all, the room page GET /{roomName}.
    from herewith.signaling.service import install as install_signaling
    from herewith.web.routes import install as install_room_pages

    from herewith.media.setup import install as install_media

    install_media(app)  # issue 7: group rooms on Janus (supervised local Janus or HEREWITH_JANUS_URL)
    install_signaling(app)
    install_room_pages(app)

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory herewith.app:app_factory``."""
    return create_app()
