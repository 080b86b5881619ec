"""``GET /metrics``: Prometheus text format (``prometheus-client``), and the gauges of live state behind it.

Off by default (``HEREWITH_METRICS_ENABLED``: 404 while off). With ``HEREWITH_METRICS_TOKEN`` set, a scrape
must send ``Authorization: Bearer <token>`` (401 with the contract's error body otherwise; compared in
constant time).

What it holds (the counters and histograms are defined in :mod:`herewith.kit.metrics`; the gauges here read
memory when scraped, except the webhook queue, read from the database before the scrape is answered):

- ``herewith_rooms_live{mode}``, ``herewith_participants_live{mode,role}``: live rooms and the participants
  in their calls (this process); ``herewith_signaling_connections``;
- ``herewith_participants_joined_total`` / ``_left_total{mode,role}``, ``herewith_signaling_messages_total
  {type}``, ``herewith_signaling_relay_seconds{type}`` (histogram);
- ``herewith_http_request_duration_seconds{method,route,status}`` (histogram), ``herewith_rate_limit_refusals_total
  {scope}``;
- ``herewith_webhook_queue_depth{state}`` (pending | sending), ``herewith_webhook_oldest_pending_age_seconds``,
  ``herewith_webhook_delivery_attempts_total{outcome}``, ``herewith_webhook_events_failed_total``;
- ``herewith_janus_up{instance}``, ``herewith_janus_rooms{instance}``, ``herewith_janus_participants{instance}``;
- ``herewith_recordings_running{state}`` (starting | recording, on this node);
- ``process_*`` (CPU seconds, resident memory, open files).

The webhook queue is one grouped statement on the read engine (:func:`herewith.webhooks.repository.queue_stats`)
with a 2 s timeout, run by the scrape itself at most once every ``WEBHOOK_REFRESH_SECONDS``: never on the path
that relays calls. When the database does not answer in time the last figures are served (their age in
``herewith_webhook_queue_stats_age_seconds``).

Usage (``create_app`` does this)::

    exporter = MetricsExporter(settings, LiveState(signaling, group_rooms, recordings), read_sessionmaker)
    app.include_router(router)     # request.state.metrics is the exporter
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.config import Settings
from herewith.errors import NOT_FOUND, UNAUTHORIZED, HerewithError
from herewith.kit import metrics
from herewith.media.group_rooms import GroupRooms
from herewith.recordings.control import RecordingControl
from herewith.signaling.service import Signaling
from herewith.webhooks import repository as webhooks

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)

WEBHOOK_REFRESH_SECONDS = 5.0
WEBHOOK_QUERY_TIMEOUT_SECONDS = 2.0


class WebhookQueue:
    """The outbox's depth and the age of its oldest unfinished event, as last read from the database."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], now: Callable[[], datetime]) -> None:
        self._sessionmaker = sessionmaker
        self._now = now
        self.depth: dict[str, int] = {state: 0 for state in webhooks.WAITING}
        self.oldest: datetime | None = None
        self.read_at: float | None = None  # time.monotonic() of the last successful read
        self._lock = asyncio.Lock()

    async def refresh(self, max_age: float = WEBHOOK_REFRESH_SECONDS) -> None:
        """Read the figures again when the last read is older than ``max_age`` seconds; on a timeout or a
        database error keep the last ones (logged)."""
        async with self._lock:  # concurrent scrapes share one read
            if self.read_at is not None and time.monotonic() - self.read_at < max_age:
                return
            try:
                async with asyncio.timeout(WEBHOOK_QUERY_TIMEOUT_SECONDS):
                    async with self._sessionmaker() as session:
                        self.depth, self.oldest = await webhooks.queue_stats(session)
                self.read_at = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - a scrape must answer even when the database does not
                log.warning("metrics_webhook_queue_unavailable", error=type(exc).__name__)

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("herewith_webhook_queue_depth",
                                  "Webhook events not delivered yet, by state (pending | sending).", labels=["state"])
        for state, n in self.depth.items():
            depth.add_metric([state], n)
        yield depth
        age = 0.0
        if self.oldest is not None:
            age = max(0.0, (self._now() - self.oldest.astimezone(timezone.utc)).total_seconds())
        yield GaugeMetricFamily("herewith_webhook_oldest_pending_age_seconds",
                                "Age of the oldest webhook event not delivered yet (0 when none).", value=age)
        yield GaugeMetricFamily("herewith_webhook_queue_stats_age_seconds",
                                "Seconds since the webhook queue figures were read from the database.",
                                value=(time.monotonic() - self.read_at) if self.read_at is not None else -1.0)


class LiveState(Collector):
    """A prometheus-client collector of what this process holds in memory: live rooms and participants
    (the signaling router), Janus instances (group rooms), running recordings, and :class:`WebhookQueue`."""

    def __init__(self, signaling: Signaling, group_rooms: GroupRooms | None, recordings: RecordingControl,
                 webhook_queue: WebhookQueue) -> None:
        self.signaling = signaling
        self.group_rooms = group_rooms
        self.recordings = recordings
        self.webhook_queue = webhook_queue

    def collect(self) -> Iterator[Metric]:
        rooms, people = self.signaling.router.census()
        g = GaugeMetricFamily("herewith_rooms_live", "Live rooms of this process, by room mode.", labels=["mode"])
        for mode in sorted({"normal", "group", *rooms}):
            g.add_metric([mode], rooms.get(mode, 0))
        yield g
        g = GaugeMetricFamily("herewith_participants_live", "Participants in a call in this process, by room mode "
                              "and role.", labels=["mode", "role"])
        for (mode, role), n in sorted(people.items()):
            g.add_metric([mode, role], n)
        yield g
        yield GaugeMetricFamily("herewith_signaling_connections", "Open signaling connections (in a call, in "
                                "the lobby or knocking).", value=self.signaling.stats().get("connections", 0))
        up = GaugeMetricFamily("herewith_janus_up", "1 when the Janus instance is up, 0 when down.", labels=["instance"])
        janus_rooms = GaugeMetricFamily("herewith_janus_rooms", "Group rooms placed on the Janus instance.",
                                        labels=["instance"])
        janus_people = GaugeMetricFamily("herewith_janus_participants", "Participants of the rooms on the Janus "
                                         "instance.", labels=["instance"])
        for load in self.group_rooms.instance_loads() if self.group_rooms is not None else []:
            up.add_metric([load.url], 1 if load.up else 0)
            janus_rooms.add_metric([load.url], load.rooms)
            janus_people.add_metric([load.url], load.participants)
        yield from (up, janus_rooms, janus_people)
        g = GaugeMetricFamily("herewith_recordings_running", "Cloud recordings this node runs, by state.",
                              labels=["state"])
        for state, n in sorted(self.recordings.running().items()):
            g.add_metric([state], n)
        yield g
        yield from self.webhook_queue.collect()


class MetricsExporter:
    """One app's registry (:func:`herewith.kit.metrics.build_registry` with :class:`LiveState`) and its settings."""

    def __init__(self, settings: Settings, live: LiveState) -> None:
        self.settings = settings
        self.live = live
        self.registry = metrics.build_registry([live])

    def authorized(self, authorization: str | None) -> bool:
        token = self.settings.metrics_token
        if not token:
            return True
        scheme, _, given = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())

    async def render(self) -> bytes:
        await self.live.webhook_queue.refresh()
        return metrics.exposition(self.registry)


@router.get("/metrics")
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format; 404 when metrics are off, 401 without the configured bearer token."""
    exporter: Any = getattr(request.state, "metrics", None)
    if exporter is None:
        raise HerewithError(NOT_FOUND, status=404)
    if not exporter.authorized(request.headers.get("authorization")):
        raise HerewithError(UNAUTHORIZED, status=401, headers={"WWW-Authenticate": "Bearer"})
    return Response(await exporter.render(), media_type=metrics.CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})
