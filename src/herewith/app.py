"""``create_app()``: the wiring. Settings -> one typed :class:`Services` object -> routers and lifespan.

Every part of the server is built here, once, and handed what it needs (LiveKit's ``wire.go`` plays this
part there); no other module builds a part or reads ``app.state``. Endpoints reach the parts they use
through the lifespan state (:meth:`Services.request_state`; read by :mod:`herewith.deps` and each
domain's dependencies). Events that flow back up the layers go through two typed publishers:
:class:`~herewith.rooms.events.RoomEvents` (a participant joined, left, knocked: room sessions, insights
and webhooks subscribe) and :class:`~herewith.meetings.events.MeetingEvents` (a meeting ended: signaling,
group rooms and theming subscribe).

Usage::

    app = create_app(Settings(data_dir=Path("data")))
    uvicorn.run(app, host="127.0.0.1", port=8080)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from herewith import __version__, errors
from herewith.auth.dependencies import get_organization
from herewith.config import Settings
from herewith.db.engine import create_engine, create_read_engine, create_sessionmaker, dispose
from herewith.db.migrate import upgrade
from herewith.db.reports import ReportRunner
from herewith.insights.endpoints import router as insights_router
from herewith.jobs.heartbeat import Heartbeat
from herewith.captions.control import CaptionControl, create_caption_control
from herewith.jobs.recordings import RecordingJob
from herewith.jobs.summaries import SummaryJob
from herewith.jobs.transcriptions import TranscriptionJob
from herewith.jobs.sweeper import Sweeper
from herewith.jobs.webhook_delivery import run_webhook_delivery
from herewith.kit.asgi import BodySizeLimit, TextGuard
from herewith.kit.logs import RequestId, configure_logging
from herewith.kit.metrics import HttpMetrics
from herewith.kit.security_headers import SecurityHeaders
from herewith.kit.time import Clock
from herewith.media.group_rooms import GroupRooms
from herewith.media.setup import create_group_rooms
from herewith.meetings.endpoints import router as meetings_router
from herewith.meetings.events import MeetingEvents
from herewith.metered.endpoints import router as metered_router
from herewith.ratelimit.core import RateLimiter
from herewith.ratelimit.http import RateLimitHeaders, rate_limit_enforcer
from herewith.ratelimit.setup import create_limiter
from herewith.recordings.control import RecorderLauncher, RecordingControl
from herewith.recordings.endpoints import public_router as recordings_public_router
from herewith.recordings.endpoints import router as recordings_router
from herewith.rooms.events import RoomEvents
from herewith.sessions.service import RoomEventRecorder
from herewith.summaries.endpoints import router as summaries_router
from herewith.signaling.endpoint import router as signaling_router
from herewith.signaling.service import Signaling
from herewith.theming import service as theming_service
from herewith.theming.endpoints import public_router as themes_public_router
from herewith.theming.endpoints import register_body_schemas
from herewith.theming.endpoints import router as theme_router
from herewith.theming.schemas import BackgroundPresetRequest, LogoResetRequest, ThemeTokensRequest
from herewith.theming.storage import ThemeStore
from herewith.transcriptions.endpoints import public_router as transcriptions_public_router
from herewith.transcriptions.endpoints import router as transcriptions_router
from herewith.transcriptions.transcriber import Transcriber
from herewith.web.api_docs import install_api_docs
from herewith.web.metrics import LiveState, MetricsExporter, WebhookQueue
from herewith.web.metrics import router as metrics_router
from herewith.web.routes import create_room_lookup_limiter
from herewith.web.routes import install as install_room_pages
from herewith.webhooks.endpoints import router as webhooks_router

log = structlog.get_logger(__name__)


@dataclass
class Services:
    """Every long-lived part of one Herewith process, built once by :func:`build_services`.

    The database parts (``engine``, ``sessionmaker``, and ``read_engine``, ``read_sessionmaker`` for reads
    that need no transaction) are created without connecting; the lifespan migrates,
    starts the background work and closes everything in order.
    """

    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    read_engine: AsyncEngine
    read_sessionmaker: async_sessionmaker[AsyncSession]
    limiter: RateLimiter | None
    room_events: RoomEvents
    meeting_events: MeetingEvents
    webhook_wakeup: asyncio.Event
    recorder: RoomEventRecorder
    sweeper: Sweeper
    heartbeat: Heartbeat
    theme_store: ThemeStore
    group_rooms: GroupRooms | None
    signaling: Signaling
    reports: ReportRunner
    recordings: RecordingControl
    recording_job: RecordingJob
    recording_wakeup: asyncio.Event
    transcriber: Transcriber
    transcription_job: TranscriptionJob
    transcription_wakeup: asyncio.Event
    summary_job: SummaryJob
    summary_wakeup: asyncio.Event
    captions: CaptionControl
    room_lookup_limiter: RateLimiter | None = None  # room pages per client address (herewith.web.routes)
    metrics: MetricsExporter | None = None  # /metrics (herewith.web.metrics); None while HEREWITH_METRICS_ENABLED is off
    background_tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def request_state(self) -> dict[str, Any]:
        """The parts endpoints may use, by name: the lifespan state copied into every request."""
        return {
            "settings": self.settings,
            "clock": self.clock,
            "sessionmaker": self.sessionmaker,
            "read_engine": self.read_engine,  # the API-key lookup (herewith.auth.dependencies)
            "read_sessionmaker": self.read_sessionmaker,  # herewith.deps.ReadSessionDep
            "charge_request": rate_limit_enforcer(self.limiter) if self.limiter is not None else None,
            "meeting_events": self.meeting_events,
            "webhook_wakeup": self.webhook_wakeup,
            "theme_store": self.theme_store,
            "signaling": self.signaling,
            "reports": self.reports,
            "room_lookup_limiter": self.room_lookup_limiter,
            "recordings": self.recordings,
            "recording_wakeup": self.recording_wakeup,
            "metrics": self.metrics,
            "transcriber": self.transcriber,  # POST /v1/transcriptions asks it whether speech-to-text can run
            "transcription_wakeup": self.transcription_wakeup,
            "summary_wakeup": self.summary_wakeup,
        }


def create_recorder_launcher(settings: Settings) -> RecorderLauncher | None:
    """The recorder launcher named by ``settings.recorder_launcher``: ``chromium`` (the supervised Chromium
    pool, :class:`herewith.media.recorder.RecorderPool`; None while that module is absent) or
    ``module:callable`` (called with the settings)."""
    import importlib

    name = settings.recorder_launcher
    if name == "chromium":
        try:
            module = importlib.import_module("herewith.media.recorder")
        except ImportError:
            log.info("cloud_recording_unavailable", reason="no recorder pool in this build")
            return None
        return module.RecorderPool(settings)
    module_name, _, attr = name.partition(":")
    return getattr(importlib.import_module(module_name), attr)(settings)


def build_services(settings: Settings, clock: Clock) -> Services:
    """Build every part and connect the publishers to their subscribers (no I/O happens here)."""
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    read_engine = create_read_engine(settings)
    read_sessionmaker = create_sessionmaker(read_engine)
    room_events = RoomEvents()
    meeting_events = MeetingEvents()
    webhook_wakeup = asyncio.Event()
    node_id = str(uuid.uuid4())  # this process, as the nodes table knows it (herewith.sessions.nodes)
    recorder = RoomEventRecorder(sessionmaker, settings, webhook_wakeup, node_id)
    room_events.subscribe(recorder)
    group_rooms = create_group_rooms(settings, sessionmaker)
    recording_wakeup = asyncio.Event()
    launcher = create_recorder_launcher(settings)
    recordings = RecordingControl(sessionmaker, settings, clock, node_id, launcher, recording_wakeup)
    if launcher is not None and hasattr(launcher, "on_lost"):
        launcher.on_lost = recordings.on_recorder_lost  # a recorder that died for good: stop with what exists
    room_events.subscribe(recordings.on_room_event)  # triggers; a room left to its recorders stops recording
    captions = create_caption_control(sessionmaker, settings, clock, on_stored=lambda _id: webhook_wakeup.set(),
                                      node_id=node_id)
    room_events.subscribe(captions.on_room_event)  # triggers; the captioner's arrival; a session's end stores
    # Room lookups only read: the read engine, so a join never queues behind SQLite's one writer connection.
    signaling = Signaling(settings, clock, read_sessionmaker, room_events,
                          group_rooms.room_for if group_rooms is not None else None, recordings, captions)
    theme_store = ThemeStore(settings.data_dir / "themes")

    async def forget_theme(meeting: Any, reason: str) -> None:
        # deleted, or deactivated at endDate + 1 h (the room page is a 410 from then on): images go.
        await theming_service.forget_room(theme_store, meeting)

    meeting_events.subscribe(signaling.on_meeting_deleted)  # ends the call for everyone in the room
    if group_rooms is not None:
        meeting_events.subscribe(group_rooms.on_meeting_deleted)  # destroys the Janus room
    meeting_events.subscribe(forget_theme)
    meeting_events.subscribe(recordings.on_meeting_ended)  # stops the recording; the file is kept
    meeting_events.subscribe(captions.on_meeting_ended)  # stops live captions; what was said is stored
    metrics_exporter = None
    if settings.metrics_enabled:  # gauges of live state, read when /metrics is scraped
        live = LiveState(signaling, group_rooms, recordings, WebhookQueue(read_sessionmaker, clock.now))
        metrics_exporter = MetricsExporter(settings, live)
    transcriber = Transcriber(settings)  # speech worker processes start with the first transcription
    transcription_wakeup = asyncio.Event()
    summary_wakeup = asyncio.Event()
    return Services(
        settings=settings,
        clock=clock,
        engine=engine,
        sessionmaker=sessionmaker,
        read_engine=read_engine,
        read_sessionmaker=read_sessionmaker,
        limiter=create_limiter(settings),
        room_events=room_events,
        meeting_events=meeting_events,
        webhook_wakeup=webhook_wakeup,
        recorder=recorder,
        sweeper=Sweeper(sessionmaker, settings, clock, meeting_events, webhook_wakeup),
        heartbeat=Heartbeat(sessionmaker, settings, clock, node_id, webhook_wakeup),
        theme_store=theme_store,
        group_rooms=group_rooms,
        signaling=signaling,
        reports=ReportRunner(settings),
        recordings=recordings,
        recording_job=RecordingJob(sessionmaker, settings, clock, node_id, recording_wakeup, webhook_wakeup),
        recording_wakeup=recording_wakeup,
        transcriber=transcriber,
        transcription_job=TranscriptionJob(sessionmaker, settings, clock, node_id, transcriber, transcription_wakeup,
                                           webhook_wakeup),
        transcription_wakeup=transcription_wakeup,
        summary_job=SummaryJob(sessionmaker, settings, clock, node_id, summary_wakeup),
        summary_wakeup=summary_wakeup,
        captions=captions,
        room_lookup_limiter=create_room_lookup_limiter(settings),
        metrics=metrics_exporter,
    )


def services_of(app: FastAPI) -> Services:
    """The :class:`Services` of an app made by :func:`create_app` (tests and benchmarks reach parts here)."""
    return app.state.services


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Build the app. ``settings`` default to the environment; ``clock`` lets tests move time."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    services = build_services(settings, clock or Clock())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        s = services
        await upgrade(s.engine)
        s.reports.start()
        tasks = s.background_tasks
        if s.group_rooms is not None:
            # Janus starts in the background: the server answers at once; group-room joins wait for it.
            tasks.append(asyncio.create_task(s.group_rooms.start(), name="janus-start"))
        await s.heartbeat.start()  # this node is alive; what a crashed one left open is closed
        tasks.append(asyncio.create_task(s.heartbeat.run(), name="heartbeat"))
        if settings.background_tasks:
            tasks.append(asyncio.create_task(s.sweeper.run(), name="lifecycle-sweeper"))
            tasks.append(asyncio.create_task(
                run_webhook_delivery(s.sessionmaker, settings, s.clock.now, s.webhook_wakeup), name="webhook-delivery"))
            tasks.append(asyncio.create_task(s.recording_job.run(), name="recordings"))
            tasks.append(asyncio.create_task(s.transcription_job.run(), name="transcriptions"))
            tasks.append(asyncio.create_task(s.summary_job.run(), name="summaries"))
        log.info("started", database=s.engine.dialect.name, public_url=settings.public_url)
        try:
            yield s.request_state()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            tasks.clear()
            # In order: no new room events, the last ones recorded, then the media and the database.
            await s.recordings.close()  # running recordings stop; the next start finalizes them
            await s.transcriber.close()  # speech workers end; an unfinished transcription runs again at the next start
            await s.captions.close()  # captioners leave; the sessions' captions are stored
            await s.signaling.close()
            await s.room_events.close()
            await s.recorder.flush_stats()
            await s.heartbeat.stop()
            if s.group_rooms is not None:
                await s.group_rooms.stop()
            if s.limiter is not None:
                await s.limiter.aclose()
            if s.room_lookup_limiter is not None:
                await s.room_lookup_limiter.aclose()
            await s.reports.stop()
            await dispose(s.engine, s.read_engine)

    app = FastAPI(
        title="Herewith",
        version=__version__,
        summary="Self-hosted video meeting rooms with a Whereby-compatible REST API (v1).",
        openapi_url="/v1/openapi.json",
        docs_url=None,  # served from this server, not a CDN: install_api_docs below
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    errors.install(app)

    # Every /v1 call: Bearer key -> organization -> rate-limit charge (429 before the endpoint runs).
    v1 = {"prefix": "/v1", "dependencies": [Depends(get_organization)]}
    app.include_router(meetings_router, **v1)
    app.include_router(insights_router, **v1)  # GET /v1/insights/*
    app.include_router(webhooks_router, **v1)  # /v1/webhooks
    app.include_router(recordings_router, **v1)  # /v1/recordings
    app.include_router(transcriptions_router, **v1)  # /v1/transcriptions
    app.include_router(summaries_router, **v1)  # /v1/summaries
    app.include_router(theme_router, **v1)  # room theming: PUT /v1/rooms/{roomName}/theme/*
    register_body_schemas(app, [ThemeTokensRequest, LogoResetRequest, BackgroundPresetRequest])  # JSON-or-upload bodies
    errors.document_errors(app, "/v1/")  # each /v1 operation lists the error statuses it returns, no 422
    app.include_router(themes_public_router)  # public /themes/* images
    app.include_router(metered_router)  # the second vendor's room API: /api/v1 with ?secretKey= (docs/metered.md)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    app.include_router(metrics_router)  # GET /metrics (Prometheus; 404 unless HEREWITH_METRICS_ENABLED)
    app.include_router(signaling_router)  # the signaling WebSocket /signal/{roomName}
    app.include_router(recordings_public_router)  # /recordings/files/* downloads, /record/ingest/* WebSocket
    app.include_router(transcriptions_public_router)  # /transcriptions/files/* transcript downloads
    install_api_docs(app, "/v1/docs")
    install_room_pages(app)  # last of all: the room page GET /{roomName}

    if services.limiter is not None:
        app.add_middleware(RateLimitHeaders)
    app.add_middleware(TextGuard)  # no NUL in path or query, none (nor lone surrogates) in JSON bodies
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # outermost: nosniff, no-referrer and a Content-Security-Policy on every response, 413s included
    app.add_middleware(SecurityHeaders, frame_ancestors=settings.frame_ancestors, public_url=settings.public_url)
    if services.metrics is not None:
        app.add_middleware(HttpMetrics)  # request latency by route template and status, 413s and 429s included
    app.add_middleware(RequestId)  # outermost: X-Request-Id in and out, request_id on every log line
    return app


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory herewith.app:app_factory``."""
    return create_app()
