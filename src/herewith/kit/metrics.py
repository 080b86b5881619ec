"""Prometheus metrics (``prometheus-client``): the definitions every layer counts into, and the HTTP middleware.

The metrics here are module-level objects created without a registry, so any layer may import and count into
them at the cost of a dict lookup and an add (no I/O, never blocks: safe on the event loop that relays calls).
``create_app`` builds one :class:`~prometheus_client.CollectorRegistry` per app with :func:`build_registry`
(these metrics, the process collector, and the app's own collectors of live state: rooms, participants, Janus,
recordings, the webhook queue) and serves it at ``/metrics`` (``herewith.web.metrics``).

Names follow Prometheus conventions (``herewith_`` prefix, seconds, ``_total`` added by the client library to
counters). Label values come from closed sets (message types of the signaling protocol, room modes, roles,
route templates, HTTP methods), never from what a client sends, so the number of series is bounded.

Usage::

    from herewith.kit import metrics
    metrics.SIGNALING_MESSAGES.labels("offer").inc()
    registry = metrics.build_registry(MyCollector())
    text = metrics.exposition(registry)          # bytes, Prometheus text format
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import ProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_TYPE_LATEST", "build_registry", "exposition", "HttpMetrics"]

# Latency buckets in seconds: signaling relays are sub-millisecond when the loop is free; API calls a few ms.
_RELAY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

SIGNALING_MESSAGES = Counter(
    "herewith_signaling_messages", "Signaling messages received from participants, by protocol message type.",
    ["type"], registry=None)
SIGNALING_RELAY_SECONDS = Histogram(
    "herewith_signaling_relay_seconds",
    "Time from a parsed signaling message to the end of its handling by the room (an SDP offer/answer or ICE "
    "candidate written to the target's queue), by message type.",
    ["type"], buckets=_RELAY_BUCKETS, registry=None)
PARTICIPANTS_JOINED = Counter(
    "herewith_participants_joined", "Participants admitted to a call, by room mode and role.",
    ["mode", "role"], registry=None)
PARTICIPANTS_LEFT = Counter(
    "herewith_participants_left", "Participants who left a call (left, disconnected, removed, ended), by room "
    "mode and role.", ["mode", "role"], registry=None)
HTTP_REQUEST_SECONDS = Histogram(
    "herewith_http_request_duration_seconds",
    "HTTP requests by method, route template (/v1/meetings/{meetingId}; 'unmatched' when no route) and status.",
    ["method", "route", "status"], buckets=_HTTP_BUCKETS, registry=None)
RATE_LIMIT_REFUSALS = Counter(
    "herewith_rate_limit_refusals", "Requests refused by a rate limit: api (429 on /v1), room_page (429 on a "
    "room page), signaling (frames dropped over a connection's budget).", ["scope"], registry=None)
WEBHOOK_ATTEMPTS = Counter(
    "herewith_webhook_delivery_attempts", "Webhook delivery attempts by outcome (delivered | failed).",
    ["outcome"], registry=None)
WEBHOOK_EVENTS_FAILED = Counter(
    "herewith_webhook_events_failed", "Webhook events given up after their retry window.", registry=None)

#: Every module-level metric above, registered in each app's registry by :func:`build_registry`.
METRICS: tuple[Collector, ...] = (
    SIGNALING_MESSAGES, SIGNALING_RELAY_SECONDS, PARTICIPANTS_JOINED, PARTICIPANTS_LEFT, HTTP_REQUEST_SECONDS,
    RATE_LIMIT_REFUSALS, WEBHOOK_ATTEMPTS, WEBHOOK_EVENTS_FAILED,
)


def build_registry(collectors: Iterable[Collector] = ()) -> CollectorRegistry:
    """A new registry with :data:`METRICS`, the process collector (CPU, memory, open files of this process)
    and ``collectors`` (an app's live-state collectors)."""
    registry = CollectorRegistry(auto_describe=True)
    for metric in METRICS:
        registry.register(metric)
    ProcessCollector(registry=registry)
    for collector in collectors:
        registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """``registry`` in the Prometheus text format (:data:`CONTENT_TYPE_LATEST`)."""
    return generate_latest(registry)


_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def route_template(scope: Scope) -> str:
    """The template of the route that served ``scope`` (``/v1/meetings/{meetingId}``), or ``unmatched``.

    Starlette's router leaves the matched route in ``scope["route"]``; a route of an included router knows
    its path without the prefix it was included under (``/meetings/{meetingId}`` under ``/v1``), so the
    prefix is taken back from the request path: the route's path with the request's path parameters filled
    in is the end of the request path, and what comes before it is the prefix. A mount keeps its own path.
    """
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not template:
        return "unmatched"
    params = scope.get("path_params") or {}
    try:
        rendered = _PARAM.sub(lambda m: str(params[m[1]]), template)
    except KeyError:
        return template
    path = scope.get("path", "")
    if rendered and path.endswith(rendered) and len(path) > len(rendered):
        return path[: len(path) - len(rendered)] + template
    return template


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """Pure ASGI middleware: observes every HTTP request into :data:`HTTP_REQUEST_SECONDS`.

    The route label is the matched route's template (:func:`route_template`:
    ``/v1/meetings/{meetingId}``, ``/{roomName}``, a mount's prefix), ``unmatched`` when no route matched (a
    404 from the router, or a response a middleware sent first: 413, 400); methods outside the standard set
    count as ``other``. The time runs until the response's last byte was handed to the server.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope.get("method", "GET")
            path = route_template(scope)
            HTTP_REQUEST_SECONDS.labels(method if method in _METHODS else "other", path, str(status)).observe(
                time.perf_counter() - start)
